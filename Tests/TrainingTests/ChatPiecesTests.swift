import Testing
import Tokenizer
import Training

/// Chat data under templates other than ChatML: the trained spans come from the template.
@Suite("Chat pieces from the template")
struct ChatPiecesTests {
    static let llama3 = """
        {{- bos_token }}{% for m in messages %}<|start_header_id|>{{ m.role }}<|end_header_id|>\n\n{{ m.content | trim }}<|eot_id|>{% endfor %}\
        {% if add_generation_prompt %}<|start_header_id|>assistant<|end_header_id|>\n\n{% endif %}
        """

    @Test("a Llama 3 style template: each assistant reply with its <|eot_id|> is trained, the rest is not")
    func llama3Pieces() throws {
        let template = try ChatTemplate(template: Self.llama3, bosToken: "<|begin_of_text|>")
        let pieces = try FormatSupport.chat([("system", "Be brief.", false), ("user", "Hi", false), ("assistant", " Hello ", true),
                                             ("user", "Bye", false), ("assistant", "Ciao", false)], template: template)
        #expect(pieces == [
            Piece("<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nBe brief.<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n", trained: false),
            Piece("Hello<|eot_id|>", trained: true),
            Piece("<|start_header_id|>user<|end_header_id|>\n\nBye<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n", trained: false),
            Piece("Ciao<|eot_id|>", trained: false),
        ])
        let options = RenderOptions(chatTemplate: template, eosText: "<|eot_id|>")
        #expect(try FormatSupport.completionText("Sure.", options: options) == "Sure.<|eot_id|>")
        #expect(try FormatSupport.promptText([Message(role: "user", content: "Q")], options: options)
            == "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nQ<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n")
    }

    @Test("a template whose renders are not prefix-consistent is a field error on messages")
    func inconsistentTemplate() throws {
        // Drops every assistant turn but the last, so rendering more rewrites what came before.
        let source = "{% for m in messages %}{% if m.role != 'assistant' or loop.last %}[{{ m.role }}]{{ m.content }}{% endif %}{% endfor %}{% if add_generation_prompt %}[assistant]{% endif %}"
        let template = try ChatTemplate(template: source)
        #expect(throws: FieldError.self) {
            try FormatSupport.chat([("user", "a", false), ("assistant", "b", true), ("user", "c", false), ("assistant", "d", true)],
                                   template: template)
        }
        do {
            _ = try FormatSupport.chat([("user", "a", false), ("assistant", "b", true), ("user", "c", false), ("assistant", "d", true)],
                                       template: template)
        } catch {
            #expect(error.field == "messages" && error.message.contains("not prefix-consistent at message 3"))
        }
    }

    @Test("a template that raises for a role reports its message")
    func raisingTemplate() throws {
        let template = try ChatTemplate(template: "{% for m in messages %}{% if m.role == 'system' %}{{ raise_exception('System role not supported') }}{% endif %}{{ m.content }}{% endfor %}")
        do {
            _ = try FormatSupport.chat([("system", "s", false), ("assistant", "x", true)], template: template)
            Issue.record("expected an error")
        } catch {
            #expect(error.field == "messages" && error.message.contains("System role not supported"))
        }
    }
}
