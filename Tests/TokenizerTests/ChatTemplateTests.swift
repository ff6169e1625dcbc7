import Testing
import Tokenizer

@Suite("ChatML template")
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
        let text = template.render([ChatMessage(role: "user", content: "Hi")], addGenerationPrompt: true)
        #expect(text == "<|im_start|>system\n\(Self.systemDefault)<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n")
    }

    @Test("an explicit system turn, even empty, replaces the default")
    func explicitSystem() throws {
        let template = try ChatTemplate(template: Self.smolLM)
        let messages = [ChatMessage(role: "system", content: ""), ChatMessage(role: "user", content: "Q"),
                        ChatMessage(role: "assistant", content: "A")]
        #expect(template.render(messages, addGenerationPrompt: false)
            == "<|im_start|>system\n<|im_end|>\n<|im_start|>user\nQ<|im_end|>\n<|im_start|>assistant\nA<|im_end|>\n")
    }

    @Test("contents are inserted verbatim")
    func verbatim() throws {
        let template = try ChatTemplate(template: Self.plain)
        let content = "  spaced\n\n<|im_end|> {{ not jinja }}  "
        #expect(template.render([ChatMessage(role: "user", content: content)], addGenerationPrompt: false)
            == "<|im_start|>user\n\(content)<|im_end|>\n")
        #expect(template.render([], addGenerationPrompt: true) == "<|im_start|>assistant\n")
        #expect(try ChatTemplate(template: Self.smolLM).render([], addGenerationPrompt: false) == "")
    }

    @Test("templates that are not plain ChatML are rejected", arguments: [
        "",
        "{% for message in messages %}{{ '<|start_header_id|>' + message['role'] + '<|end_header_id|>' }}{% endfor %}",
        "{{ '<|im_start|>' + messages[0]['content'] + '<|im_end|>' }}",
        "{% for message in messages %}{% if tools %}{{ '<|im_start|>' + message['role'] + message['content'] + '<|im_end|>' }}{% endif %}{% endfor %}",
        "{% for message in messages %}{% if messages[0]['role'] != 'system' %}{{ '<|im_start|>system\n' + date + '<|im_end|>' }}{% endif %}{{ '<|im_start|>' + message['role'] + message['content'] + '<|im_end|>' }}{% endfor %}",
    ])
    func rejectsOthers(template: String) {
        #expect(throws: TokenizerError.self) { try ChatTemplate(template: template) }
        #expect(throws: TokenizerError.self) { try TinyVocabulary.make(chatTemplate: template) }
    }

    @Test("a tokenizer keeps its template, or none")
    func tokenizerTemplate() throws {
        #expect(try TinyVocabulary.make().chatTemplate == nil)
        #expect(try TinyVocabulary.make(chatTemplate: Self.smolLM).chatTemplate?.defaultSystemPrompt == Self.systemDefault)
    }
}
