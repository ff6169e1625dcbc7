#!/usr/bin/env python3
"""Expected outputs for the engine's unit tests (JinjaTests/EngineCaseTests), rendered by Python
jinja2 in the environment render_references.py sets up.

usage: engine_cases.py OUTPUT_JSON   (run from any directory; writes engine_cases.json's content)
"""
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import render_references as rr  # noqa: E402
env = rr.make_environment()
ctx = {"d": {"b": 1, "a": [1, 2]}, "s": "Hello World", "xs": [3, 1, 2], "msgs": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo", "tool_calls": [{"name": "f"}]}], "n": None, "f": 1.5}
cases = [
 "{{ 1 + 2 * 3 }} {{ 7 // 2 }} {{ -7 // 2 }} {{ -7 % 3 }} {{ 2 ** 10 }} {{ 1 / 2 }} {{ 4 / 2 }} {{ 7.0 // 2 }}",
 "{{ 'a' ~ 1 ~ none ~ true }} {{ 'ab' * 2 }} {{ [1] + [2] }} {{ f * 2 }} {{ 1e16 }} {{ 1e15 }} {{ 0.1 + 0.2 }} {{ 1e-5 }}",
 "{{ true }} {{ none }} {{ [1, 'a', none, 1.5, true] }} {{ {'k': 'it\\'s', 'q': \"say \\\"x\\\"\"} }} {{ (1,) }} {{ (1, 2) }}",
 "{% if xs|length > 2 %}big{% elif xs %}small{% else %}none{% endif %}",
 "{% for x in xs %}{{ loop.index }}{{ loop.index0 }}{{ loop.first }}{{ loop.last }}{{ loop.length }}{{ loop.revindex }}{{ loop.previtem is defined }}{{ loop.nextitem | default('-') }};{% endfor %}",
 "{% for x in [] %}a{% else %}empty{% endfor %}|{% for x in xs if x > 1 %}{{ x }}{{ loop.length }}{% endfor %}",
 "{% for x in xs %}{% if x == 1 %}{% continue %}{% endif %}{% if x == 2 %}{% break %}{% endif %}{{ x }}{% endfor %}",
 "{% for k, v in d.items() %}{{ k }}={{ v }};{% endfor %}{% for k in d %}{{ k }}{% endfor %}",
 "{% set x = 1 %}{% for i in xs %}{% set x = x + i %}{% endfor %}{{ x }}{% set ns = namespace(t=0) %}{% for i in xs %}{% set ns.t = ns.t + i %}{% endfor %}{{ ns.t }}",
 "{% set block %}  inner {{ s }}  {% endset %}[{{ block }}]{% filter upper %}up {{ s }}{% endfilter %}",
 "{% macro greet(name, punct='!') %}Hi {{ name }}{{ punct }}{% endmacro %}{{ greet('A') }} {{ greet('B', '?') }} {{ greet(punct='.', name='C') }}",
 "{% generation %}gen {{ s }}{% endgeneration %}",
 "{{ 'yes' if xs else 'no' }} {{ 'yes' if n else 'no' }} {{ 'a' if false }}|",
 "{{ 1 in xs }} {{ 5 not in xs }} {{ 'ell' in s }} {{ 'a' in d }} {{ n is none }} {{ n is not none }} {{ s is string }} {{ d is mapping }} {{ xs is iterable }} {{ xs is sequence }}",
 "{{ 3 is number }} {{ 3 is integer }} {{ f is float }} {{ true is boolean }} {{ true is true }} {{ false is false }} {{ 4 is even }} {{ 3 is odd }} {{ 9 is divisibleby 3 }} {{ 'a' is eq 'a' }} {{ 'a' is equalto 'b' }} {{ 1 is in xs }} {{ range is callable }} {{ u is undefined }} {{ u is defined }}",
 "{{ s[0] }} {{ s[-1] }} {{ s[1:3] }} {{ s[::-1] }} {{ xs[-1] }} {{ xs[:2] }} {{ xs[::2] }} {{ d.a }} {{ d['b'] }} {{ d.a[1] }} {{ msgs[1].tool_calls[0].name }}",
 "{{ d | tojson }} {{ d | tojson(indent=2) }} {{ {'z': 1, 'é': 'ü\\n\"'} | tojson(ensure_ascii=true, sort_keys=true) }} {{ xs | tojson(separators=(',', ':')) }} {{ [1.0, 2.5, none, true] | tojson }}",
 "{{ xs | length }} {{ s | count }} {{ '  pad  ' | trim }} {{ 3 | string }} {{ u | default('dflt') }} {{ '' | d('empty', true) }} {{ xs | join(', ') }} {{ d | items | list }} {{ 'ab' | list }}",
 "{{ msgs | selectattr('role', 'equalto', 'user') | list }} {{ msgs | rejectattr('tool_calls', 'defined') | map(attribute='content') | list }} {{ xs | select('odd') | list }} {{ xs | reject('odd') | list }} {{ ['a','b'] | map('upper') | list }}",
 "{{ {'b': 1, 'A': 2} | dictsort }} {{ s | lower }} {{ s | upper }} {{ 'hELLO wORLD' | capitalize }} {{ 'hello big-world' | title }} {{ s | replace('o', '0') }} {{ ['a', 'A', 'b'] | unique | list }} {{ xs | sort }} {{ msgs | sort(attribute='role', reverse=true) | map(attribute='role') | list }}",
 "{{ '42' | int }} {{ 'x' | int }} {{ 3.9 | int }} {{ '2.5' | float }} {{ 'a\\nb' | indent(2) }} {{ 'a\\nb' | indent(2, true) }} {{ xs | min }} {{ xs | max }} {{ xs | first }} {{ xs | last }} {{ -3 | abs }} {{ 2.567 | round(2) }} {{ 'one two  three' | wordcount }} {{ 'x' | safe }}",
 "{{ ' a b '.split() }} {{ 'a,b,,c'.split(',') }} {{ 'a b c'.split(' ', 1) }} {{ '  x '.strip() }} {{ 'xxaxx'.strip('x') }} {{ '  x'.lstrip() }} {{ 'x  '.rstrip() }} {{ s.startswith('He') }} {{ s.endswith(('x', 'ld')) }} {{ s.replace('l', 'L', 1) }}",
 "{{ s.upper() }} {{ s.lower() }} {{ 'ab cd'.title() }} {{ 'aB'.capitalize() }} {{ '%s-%d' % ('a', 2) }} {{ '{} and {name}'.format(1, name='n') }} {{ s.find('o') }} {{ s.count('l') }} {{ '-'.join(['a', 'b']) }}",
 "{{ d.get('b') }} {{ d.get('z') }} {{ d.get('z', 5) }} {{ d.keys() | list }} {{ d.values() | list }} {{ xs.index(1) }} {{ xs.count(3) }}",
 "{{ range(3) | list }} {{ range(1, 4) | list }} {{ range(10, 0, -3) | list }} {{ dict(a=1, b='x') }} {{ namespace(a=1).a }}",
 "{{ u }}|{{ u | length }}|{% for x in u %}x{% endfor %}|{{ u is defined }}|{{ 'c' in u }}|{{ u ~ 'z' }}",
 "  {% if true %}\n    kept\n  {% endif %}\nline {{- ' stripped ' -}} end\n{# comment #}\nafter",
 "{%- for m in msgs -%}\n<{{ m.role }}>\n{%- endfor %}\n{%+ if true %}plus{% endif +%}\nnext",
 "{{ strftime_now('%d %b %Y') }} {{ strftime_now('%Y-%m-%d %H:%M') }} {{ strftime_now('%B %-d, %A') }}",
 "{{ raise_exception('bad ' ~ s) }}",
 "{{ d.c.x }}",
 "{{ xs.append(4) }}",
 "a  {#- trimmed comment -#}  b\n  {#+ kept #}\n{%- if true -%}  c  {%- endif %}",
 "{{ 'caf\\u00e9 \\x41 \\t|' }}{{ 'con' 'cat' }}{{ \"it's\" }}{{ 'a\\qb' }}",
 "{% for a, b in [(1, 2), (3, 4)] %}{{ a + b }}{% endfor %}{% for x in 'ab' %}{{ loop.revindex0 }}{{ x }}{% endfor %}",
 "{% macro outer(x) %}[{{ inner(x) }}]{% endmacro %}{% macro inner(y) %}{{ y * 2 }}{% endmacro %}{{ outer(3) }}",
 "{% set ns = namespace(items=[]) %}{% for x in xs %}{% set ns.items = ns.items + [x * 10] %}{% endfor %}{{ ns.items }}{{ ns }}",
 "{{ xs | sum }} {{ [1.5, 2] | sum }} {{ xs | reverse | list }} {{ 'abc' | reverse }} {{ (xs | map('string') | join('-')) }} {{ msgs | map(attribute='missing', default='?') | list }}",
 "{{ 1 < 2 < 3 }} {{ 3 > 2 == 2 }} {{ not 1 in xs }} {{ -2 ** 2 }} {{ 2 ** 3 ** 2 }} {{ 10 - 2 - 3 }} {{ 7 % 3 * 2 }}",
 "{{ 1 if u is defined else 2 }} {{ (u or 'fallback') }} {{ n or 'none-fallback' }} {{ 0 and 1 }} {{ '' or [] }}",
 "{{ d | items | list | length }} {{ msgs | selectattr('content') | list | length }} {{ msgs | selectattr('tool_calls', 'defined') | map(attribute='role') | first }}",
 "{% for m in msgs %}{{ loop.cycle('odd', 'even') }}{% endfor %} {{ s.split('o') }} {{ s.rsplit(' ', 1) }} {{ s.title() }} {{ s[100:] }}|{{ s[-3:] }}",
 "{{ d.items() | list }} {{ d.keys() | list }} {{ d }} {{ d.a.1 }} {{ xs[1:] + [9] }} {{ '%s/%s' % (1, 'x') }}",
 "{% if xs is sequence and s is not mapping and d is iterable %}ok{% endif %} {{ none is none }} {{ 5 is integer and 5.0 is float }} {{ 2 is divisibleby(2) }}",
 "{{ f | int }} {{ f | round }} {{ 1.5 | round(0, 'floor') }} {{ 2.5 | round }} {{ -1.5 | abs }} {{ 3 / 2 * 2 }} {{ 10 // 4.0 }}",
 "{{ 'Hello' | indent(4, first=true) }}|{{ ' x ' | trim('x ') }}|{{ 'a-b' | replace('-', '+') | upper }}|{{ 'A B' | lower | title }}",
 "{% set x %}{% for i in range(3) %}{{ i }}{% endfor %}{% endset %}{{ x | length }}{{ x }}",
 "{{ '{\"a\": 1}' }} {{ {'a': [1, {'b': none}]} | tojson(indent=1) }} {{ 'x' | tojson }} {{ 3.0 | tojson }} {{ 'ü' | tojson(ensure_ascii=True) }}",
]
out = []
for c in cases:
    try:
        r = {"source": c, "text": env.from_string(c).render(**ctx)}
    except Exception as e:
        r = {"source": c, "error": str(e), "type": type(e).__name__}
    out.append(r)
with open(sys.argv[1], "w", encoding="utf-8") as f:
    json.dump({"context": ctx, "cases": out}, f, ensure_ascii=False, indent=1)
    f.write("\n")
