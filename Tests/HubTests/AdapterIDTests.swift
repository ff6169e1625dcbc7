import Hub
import Testing

@Suite("Adapter ids")
struct AdapterIDTests {
    @Test("tenant/name parses with no version and tenant/name@version with one")
    func parsesBothForms() throws {
        let newest = try AdapterID(parsing: "acme/support")
        #expect(newest.tenant == "acme")
        #expect(newest.name == "support")
        #expect(newest.version == nil)
        #expect(newest.description == "acme/support")

        let pinned = try AdapterID(parsing: "acme/support@3")
        #expect(pinned.tenant == "acme")
        #expect(pinned.name == "support")
        #expect(pinned.version == 3)
        #expect(pinned.description == "acme/support@3")
        #expect(newest.with(version: 3) == pinned)
        #expect(try AdapterID(tenant: "acme", name: "support", version: 3) == pinned)
    }

    @Test("dots, underscores, dashes and digits inside names are accepted, up to 64 characters",
          arguments: ["acme/support.v2", "acme/support_v2", "acme/support-v2", "9acme/2nd.try_x-y@12",
                      "ACME/Support", "a/b", "t.e-n_a.n-t/x"])
    func acceptsNames(_ text: String) throws {
        let parsed = try AdapterID(parsing: text)
        #expect(parsed.description == text)
        #expect(try AdapterID(parsing: parsed.description) == parsed)
    }

    @Test("a 64-character name and tenant are accepted")
    func acceptsLongestNames() throws {
        let longest = String(repeating: "n", count: 64)
        let parsed = try AdapterID(parsing: "\(longest)/\(longest)@1")
        #expect(parsed.tenant == longest)
        #expect(parsed.name == longest)
    }

    @Test("text that is not tenant/name is refused saying which form is expected",
          arguments: ["", "acme", "..", "a/b/c", "../x/y", "acme/x/", "acme/sub/name@2"])
    func refusesShape(_ text: String) {
        let error = #expect(throws: AdapterStoreError.self) { try AdapterID(parsing: text) }
        #expect(error == .invalidID("'\(text)' is not tenant/name or tenant/name@version"))
        #expect(error?.description.hasPrefix("invalid adapter id: ") == true)
    }

    @Test("names that could escape the directory, hide a file or are not plain ASCII are refused, naming the name",
          arguments: [
              ("acme/..", "adapter name", ".."),
              ("acme/.", "adapter name", "."),
              ("acme/.hidden", "adapter name", ".hidden"),
              ("acme/a..b", "adapter name", "a..b"),
              ("acme/_x", "adapter name", "_x"),
              ("acme/-x", "adapter name", "-x"),
              ("acme/my adapter", "adapter name", "my adapter"),
              ("acme/caf\u{E9}", "adapter name", "caf\u{E9}"),
              ("acme/\u{0430}pple", "adapter name", "\u{0430}pple"),
              ("acme/a\\b", "adapter name", "a\\b"),
              ("acme/a:b", "adapter name", "a:b"),
              ("acme/a\u{0}b", "adapter name", "a\u{0}b"),
              ("acme/", "adapter name", ""),
              ("/support", "tenant", ""),
              ("../support", "tenant", ".."),
              ("ac me/support", "tenant", "ac me"),
              (".acme/support", "tenant", ".acme"),
          ])
    func refusesUnsafeNames(_ text: String, _ what: String, _ part: String) {
        let error = #expect(throws: AdapterStoreError.self) { try AdapterID(parsing: text) }
        guard case .invalidID(let message)? = error else { return }
        #expect(message.hasPrefix("\(what) '\(part)' must be 1-64 characters"), "\(message)")
    }

    @Test("a 65-character name or tenant is refused")
    func refusesLongNames() {
        let long = String(repeating: "n", count: 65)
        for text in ["acme/\(long)", "\(long)/support"] {
            let error = #expect(throws: AdapterStoreError.self) { try AdapterID(parsing: text) }
            #expect(error?.description.contains("must be 1-64 characters") == true)
        }
    }

    @Test("versions must be one positive number after a single '@'")
    func refusesBadVersions() {
        let cases: [(String, AdapterStoreError)] = [
            ("acme/a@0", .invalidID("version 0 must be 1 or more")),
            ("acme/a@-2", .invalidID("version -2 must be 1 or more")),
            ("acme/a@x", .invalidID("version 'x' in 'acme/a@x' is not a number")),
            ("acme/a@", .invalidID("version '' in 'acme/a@' is not a number")),
            ("acme/a@1.5", .invalidID("version '1.5' in 'acme/a@1.5' is not a number")),
            ("acme/a@99999999999999999999", .invalidID(
                "version '99999999999999999999' in 'acme/a@99999999999999999999' is not a number")),
            ("acme/a@1@2", .invalidID("'acme/a@1@2' has more than one '@'")),
        ]
        for (text, expected) in cases {
            let error = #expect(throws: AdapterStoreError.self, "\(text)") { try AdapterID(parsing: text) }
            #expect(error == expected)
        }
    }

    @Test("an '@' in the tenant is refused as a bad tenant, not read as a version")
    func refusesAtInTenant() {
        let error = #expect(throws: AdapterStoreError.self) { try AdapterID(parsing: "ac@1/support") }
        #expect(error?.description.contains("tenant 'ac@1'") == true)
    }

    @Test("the member-wise initializer applies the same rules")
    func memberwiseValidates() {
        #expect(throws: AdapterStoreError.self) { try AdapterID(tenant: "acme", name: "a/b") }
        #expect(throws: AdapterStoreError.self) { try AdapterID(tenant: "..", name: "x") }
        #expect(throws: AdapterStoreError.self) { try AdapterID(tenant: "acme", name: "x", version: 0) }
        #expect(throws: Never.self) { try AdapterID(tenant: "acme", name: "x", version: 1) }
    }
}
