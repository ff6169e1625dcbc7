import NIOCore

/// Closes a connection as soon as the client closes its side. Hummingbird keeps a half-closed
/// connection open until the response is written, so a client that went away would otherwise
/// be noticed only when a write fails (a non-streamed answer: never before it is complete).
/// Once the channel closes, the request's close callback cancels its sequence in the engine.
final class ClientCloseHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = Any

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let e = event as? ChannelEvent, e == .inputClosed { context.close(promise: nil) }
        context.fireUserInboundEventTriggered(event)
    }
}
