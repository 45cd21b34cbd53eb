"""``/openapi.json`` and ``/docs``: the API described, and a page to browse it.

The page is a small hand-written HTML and script served by the app itself: no
CDN, no vendored bundle to keep up to date (it lists operations with their
parameters, bodies and answers, and can send a request).
"""

from __future__ import annotations

import json
from typing import Any

import falcon

from codeactions_core.web.middleware import PUBLIC
from codeactions_core.web.openapi import build_document


class OpenApiDocument:
    """The document is built once, on first request, when every route is in place."""

    auth = PUBLIC

    def __init__(self, app: falcon.App) -> None:
        self._app = app
        self._body: bytes | None = None

    def document(self) -> dict[str, Any]:
        return build_document(self._app)

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        if self._body is None:
            self._body = json.dumps(self.document(), indent=1).encode()
        resp.content_type = falcon.MEDIA_JSON
        resp.data = self._body


class DocsPage:
    auth = PUBLIC

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.content_type = "text/html; charset=utf-8"
        resp.text = PAGE


PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>codeactions API</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body{font:14px/1.45 system-ui,sans-serif;margin:0 auto;max-width:70rem;padding:1rem;color:#222}
h1{font-size:1.4rem}h2{font-size:1.1rem;margin-top:1.6rem;border-bottom:1px solid #ddd}
details{border:1px solid #ddd;border-radius:4px;margin:.3rem 0;padding:.3rem .6rem}
summary{cursor:pointer}code,pre{font-family:ui-monospace,monospace;font-size:12px}
pre{background:#f6f6f6;padding:.5rem;overflow:auto;max-height:24rem}
.m{display:inline-block;width:4.5rem;font-weight:bold;text-transform:uppercase}
.get{color:#1769aa}.post{color:#2e7d32}.put,.patch{color:#a86200}.delete{color:#c62828}
input{font:inherit;width:20rem}button{font:inherit}
</style></head><body>
<h1>codeactions API</h1>
<p>From <a href="openapi.json">openapi.json</a>. Every failure answers
<code>{"message": "..."}</code>.
Token (sent as <code>Authorization</code>): <input id="token" placeholder="Token ..."></p>
<div id="ops">loading…</div>
<script>
"use strict";
const el = (tag, attrs = {}, ...kids) => {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  for (const kid of kids) node.append(kid);
  return node;
};
const pretty = (value) => JSON.stringify(value, null, 2);
function resolve(doc, schema, depth = 0) {
  if (!schema || depth > 6) return schema;
  if (schema.$ref) {
    return resolve(doc, doc.components.schemas[schema.$ref.split("/").pop()], depth + 1);
  }
  const out = Array.isArray(schema) ? [] : {};
  for (const [k, v] of Object.entries(schema)) {
    out[k] = typeof v === "object" ? resolve(doc, v, depth + 1) : v;
  }
  return out;
}
function tryIt(path, method, op) {
  const form = el("div");
  const inputs = {};
  for (const p of op.parameters || []) {
    inputs[p.name] = el("input", {placeholder: `${p.in} ${p.name}`});
    form.append(el("div", {}, inputs[p.name]));
  }
  const body = op.requestBody ? el("textarea", {rows: 4, cols: 60, placeholder: "body"}) : null;
  if (body) form.append(body);
  const out = el("pre");
  const send = el("button", {}, "send");
  send.onclick = async () => {
    let url = path;
    const query = new URLSearchParams();
    for (const p of op.parameters || []) {
      const value = inputs[p.name].value;
      if (p.in === "path") url = url.replace(`{${p.name}}`, encodeURIComponent(value));
      else if (value) query.set(p.name, value);
    }
    const headers = {};
    const token = document.getElementById("token").value;
    if (token) headers.Authorization = token;
    if (body && body.value.trim().startsWith("{")) headers["Content-Type"] = "application/json";
    const q = query.toString();
    const answer = await fetch(url + (q ? "?" + q : ""), {method: method.toUpperCase(), headers,
      body: body && body.value ? body.value : undefined});
    out.textContent = `${answer.status}\\n` + await answer.text();
  };
  form.append(send, out);
  return form;
}
async function main() {
  const doc = await (await fetch("openapi.json")).json();
  const root = document.getElementById("ops");
  root.textContent = "";
  const byTag = {};
  for (const [path, item] of Object.entries(doc.paths))
    for (const [method, op] of Object.entries(item))
      (byTag[(op.tags || ["other"])[0]] ||= []).push([path, method, op]);
  for (const [tag, ops] of Object.entries(byTag)) {
    root.append(el("h2", {}, tag));
    for (const [path, method, op] of ops) {
      const d = el("details", {}, el("summary", {}, el("span", {class: "m " + method}, method),
        el("code", {}, path), " — " + (op.summary || "")));
      if (op.parameters) d.append(el("h4", {}, "parameters"), el("pre", {}, pretty(op.parameters)));
      if (op.requestBody) {
        d.append(el("h4", {}, "body"), el("pre", {}, pretty(resolve(doc, op.requestBody))));
      }
      d.append(el("h4", {}, "answers"), el("pre", {}, pretty(resolve(doc, op.responses))));
      d.append(el("h4", {}, "try it"), tryIt(path, method, op));
      root.append(d);
    }
  }
}
main();
</script></body></html>
"""
