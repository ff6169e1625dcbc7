import Jinja
import Testing
import Tokenizer

@Suite("Chat templates")
struct ChatTemplateTests {
    static let smolLM = """
        {% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}{{ '<|im_start|>system
        You are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>
        ' }}{% endif %}{{'<|im_start|>' + message['role'] + '
        ' + message['content'] + '<|im_end|>' + '
        '}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant
        ' }}{% endif %}
        """
    static let plain = #"{% for message in messages %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"#
    static let escapedDefault = #"{% for message in messages %}{% if loop.first and messages[0]['role'] != "system" %}{{ '<|im_start|>system\nYou\'re terse.\tBe kind.<|im_end|>\n' }}{% endif %}{{'<|im_start|>' + message.role + '\n' + message.content + '<|im_end|>\n'}}{% endfor %}"#
    static let systemDefault = "You are a helpful AI assistant named SmolLM, trained by Hugging Face"

    @Test("the SmolLM2 template yields its default system prompt")
    func extractsDefault() throws {
        #expect(try ChatTemplate(template: Self.smolLM).defaultSystemPrompt == Self.systemDefault)
        #expect(try ChatTemplate(template: Self.plain).defaultSystemPrompt == nil)
        #expect(try ChatTemplate(template: Self.escapedDefault).defaultSystemPrompt == "You're terse.\tBe kind.")
    }

    @Test("a conversation without a system turn gets the default one")
    func prependsDefault() throws {
        let template = try ChatTemplate(template: Self.smolLM)
        let text = try template.render([ChatMessage(role: "user", content: "Hi")], addGenerationPrompt: true)
        #expect(text == "<|im_start|>system\n\(Self.systemDefault)<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n")
    }

    @Test("an explicit system turn, even empty, replaces the default")
    func explicitSystem() throws {
        let template = try ChatTemplate(template: Self.smolLM)
        let messages = [ChatMessage(role: "system", content: ""), ChatMessage(role: "user", content: "Q"),
                        ChatMessage(role: "assistant", content: "A")]
        #expect(try template.render(messages, addGenerationPrompt: false)
            == "<|im_start|>system\n<|im_end|>\n<|im_start|>user\nQ<|im_end|>\n<|im_start|>assistant\nA<|im_end|>\n")
    }

    @Test("contents are inserted verbatim")
    func verbatim() throws {
        let template = try ChatTemplate(template: Self.plain)
        let content = "  spaced\n\n<|im_end|> {{ not jinja }}  "
        #expect(try template.render([ChatMessage(role: "user", content: content)], addGenerationPrompt: false)
            == "<|im_start|>user\n\(content)<|im_end|>\n")
        #expect(try template.render([], addGenerationPrompt: true) == "<|im_start|>assistant\n")
        #expect(try ChatTemplate(template: Self.smolLM).render([], addGenerationPrompt: false) == "")
    }

    @Test("templates that do not parse are rejected with line and column", arguments: [
        ("{% for message in messages %}{{ message.content }}", 1, 51),
        ("ok\n{{ messages[0].content + }}", 2, 26),
        ("{% if x %}\n{% endfor %}", 2, 4),
    ])
    func rejectsSyntaxErrors(template: String, line: Int, column: Int) throws {
        #expect(throws: TokenizerError.self) { try TinyVocabulary.make(chatTemplate: template) }
        do {
            _ = try ChatTemplate(template: template)
            Issue.record("expected a parse error")
        } catch {
            guard case .invalidTemplate(let e) = error else { Issue.record("unexpected \(error)"); return }
            #expect(e.kind == .syntax && e.line == line && e.column == column, "\(e)")
        }
        let tokenizer = try TinyVocabulary.make(chatTemplate: template, keepInvalidTemplate: true)
        #expect(tokenizer.chatTemplate == nil)
        #expect(tokenizer.chatTemplateError != nil)
    }

    @Test("templates of other shapes render: Llama 3 style with bos_token and a raised error")
    func otherShapes() throws {
        let llama = """
            {{- bos_token }}{% for m in messages %}{% if m.role == 'system' %}{{ raise_exception('System role not supported') }}{% endif %}\
            <|start_header_id|>{{ m.role }}<|end_header_id|>\n\n{{ m.content | trim }}<|eot_id|>{% endfor %}\
            {% if add_generation_prompt %}<|start_header_id|>assistant<|end_header_id|>\n\n{% endif %}
            """
        let template = try ChatTemplate(template: llama, bosToken: "<|begin_of_text|>")
        #expect(try template.render([ChatMessage(role: "user", content: " Hi ")], addGenerationPrompt: true)
            == "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n")
        #expect(template.defaultSystemPrompt == nil)
        #expect(throws: JinjaError(.raised, "System role not supported", line: 1, column: 70)) {
            try template.render([ChatMessage(role: "system", content: "S")], addGenerationPrompt: false)
        }
    }

    @Test("tools, tool calls and extra variables reach the template")
    func richRender() throws {
        let source = """
            {% if tools %}{{ tools | tojson }}\n{% endif %}{% for m in messages %}{{ m.role }}:\
            {% if m.tool_calls %}{% for c in m.tool_calls %}{{ c.function.name }}({{ c.function.arguments | tojson }}){% endfor %}\
            {% else %}{{ m.content }}{% endif %}\n{% endfor %}{% if enable_thinking is false %}/no_think{% endif %}
            """
        let template = try ChatTemplate(template: source)
        let messages = try JinjaValue(json: #"""
            [{"role": "user", "content": "weather?"},
             {"role": "assistant", "tool_calls": [{"function": {"name": "get", "arguments": {"city": "Paris", "n": 2.0}}}]}]
            """#)
        guard case .array(let list) = messages else { Issue.record("not an array"); return }
        let text = try template.render(messages: list, tools: [["name": "get"]], addGenerationPrompt: false,
                                       variables: ["enable_thinking": false])
        // trim_blocks drops the newline after each `{% endif %}`/`{% endfor %}`, as in jinja2.
        #expect(text == "[{\"name\": \"get\"}]\nuser:weather?assistant:get({\"city\": \"Paris\", \"n\": 2.0})/no_think")
    }

    @Test("a conversation splits into untrained text and assistant spans")
    func segments() throws {
        let template = try ChatTemplate(template: Self.smolLM)
        let messages: [JinjaValue] = [["role": "user", "content": "Q1"], ["role": "assistant", "content": "A1"],
                                      ["role": "user", "content": "Q2"], ["role": "assistant", "content": "A2"]]
        let segments = try template.segments(messages: messages)
        #expect(segments == [
            ChatSegment(text: "<|im_start|>system\n\(Self.systemDefault)<|im_end|>\n<|im_start|>user\nQ1<|im_end|>\n<|im_start|>assistant\n", assistantMessage: nil),
            ChatSegment(text: "A1<|im_end|>\n", assistantMessage: 1),
            ChatSegment(text: "<|im_start|>user\nQ2<|im_end|>\n<|im_start|>assistant\n", assistantMessage: nil),
            ChatSegment(text: "A2<|im_end|>\n", assistantMessage: 3),
        ])
        #expect(segments.map(\.text).joined() == (try template.render(messages: messages, addGenerationPrompt: false)))
    }

    @Test("a template that rewrites earlier turns cannot be split")
    func notPrefixConsistent() throws {
        // Only the last assistant turn keeps its reasoning, as Qwen3's template does.
        let source = """
            {% for m in messages %}<{{ m.role }}>{% if m.role == 'assistant' and loop.last %}[think]{% endif %}{{ m.content }}</{{ m.role }}>{% endfor %}\
            {% if add_generation_prompt %}<assistant>{% endif %}
            """
        let template = try ChatTemplate(template: source)
        let messages: [JinjaValue] = [["role": "user", "content": "Q"], ["role": "assistant", "content": "A"],
                                      ["role": "user", "content": "Q2"], ["role": "assistant", "content": "B"]]
        #expect(throws: ChatTemplateError.self) { try template.segments(messages: messages) }
        do {
            _ = try template.segments(messages: messages)
        } catch {
            #expect("\(error)".contains("not prefix-consistent at message"))
        }
    }

    @Test("a tokenizer keeps its template, or none")
    func tokenizerTemplate() throws {
        #expect(try TinyVocabulary.make().chatTemplate == nil)
        #expect(try TinyVocabulary.make(chatTemplate: Self.smolLM).chatTemplate?.defaultSystemPrompt == Self.systemDefault)
        // The tokenizer hands the template its special tokens' text; it has no BOS, so that stays undefined.
        let tokenizer = try TinyVocabulary.make(chatTemplate: "{{ eos_token }}|{{ bos_token is defined }}")
        #expect(try tokenizer.chatTemplate?.render([], addGenerationPrompt: false) == "<|end|>|False")
        #expect(tokenizer.chatTemplateError == nil)
    }
}
