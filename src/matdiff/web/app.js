// matdiff's page: typeset preview while typing (POST /api/parse), the symbols table,
// derivation (POST /api/derive?mathml=1), inline errors, examples, state in the URL hash.
// Math arrives as MathML built by the server; it is sanitized before it enters the page,
// and user text only ever enters the page as text nodes.
"use strict";

const $ = (id) => document.getElementById(id);
const MATHML_NS = "http://www.w3.org/1998/Math/MathML";

const state = {
  wrt: new Set(),      // names ticked in the "wrt" column
  declared: {},        // name -> shape as typed ("m, n", "n", "scalar")
  symmetric: new Set(),
  inferred: {},        // name -> dims from the last successful parse (may end in "symmetric")
};
let previewSeq = 0;
let deriveSeq = 0;
let previewTimer = null;

// ----------------------------------------------------------------------------- helpers

async function post(url, body) {
  let res;
  try {
    res = await fetch(url, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(body),
    });
  } catch (err) {
    return { ok: false, status: 0,
             body: { error: "cannot reach the matdiff server — is `matdiff serve` running?" } };
  }
  let data;
  try {
    data = await res.json();
  } catch (err) {
    data = { error: `the server answered ${res.status}` };
  }
  return { ok: res.ok, status: res.status, body: data };
}

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") node.className = v;
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v);
  }
  for (const c of children) node.append(c);
  return node;
}

// MathML from the server, parsed as XML; anything outside MathML or any script-bearing
// attribute is dropped, so even a crafted shared link cannot inject markup.
function safeMath(mathml) {
  const doc = new DOMParser().parseFromString(mathml, "application/xml");
  const root = doc.documentElement;
  if (root.namespaceURI !== MATHML_NS || doc.querySelector("parsererror")) {
    return document.createTextNode("");
  }
  const clean = (node) => {
    if (node.nodeType === Node.TEXT_NODE) return document.createTextNode(node.data);
    if (node.nodeType !== Node.ELEMENT_NODE || node.namespaceURI !== MATHML_NS) return null;
    const out = document.createElementNS(MATHML_NS, node.localName);
    for (const a of node.attributes) {
      const name = a.name.toLowerCase();
      if (!name.startsWith("on") && !name.includes("href") && name !== "style") {
        out.setAttribute(a.name, a.value);
      }
    }
    for (const c of node.childNodes) {
      const k = clean(c);
      if (k) out.append(k);
    }
    return out;
  };
  return clean(root);
}

function mathOrText(item) {
  if (item && typeof item.mathml === "string") return safeMath(item.mathml);
  if (item && typeof item.unicode === "string") return el("span", {}, item.unicode);
  if (item && typeof item.text === "string") return el("code", {}, item.text);
  return el("span", {}, typeof item === "string" ? item : JSON.stringify(item));
}

function copyButton(getText) {
  const button = el("button", { type: "button", class: "small copy" }, "copy");
  button.addEventListener("click", async () => {
    const text = getText();
    try {
      await navigator.clipboard.writeText(text);
    } catch (err) {  // no clipboard API (e.g. plain http on another host): select and copy
      const area = el("textarea");
      area.value = text;
      document.body.append(area);
      area.select();
      document.execCommand("copy");
      area.remove();
    }
    button.textContent = "copied";
    setTimeout(() => { button.textContent = "copy"; }, 1500);
  });
  return button;
}

// ----------------------------------------------------------------------------- shapes

function parseDims(text) {
  const t = text.trim();
  if (t === "" || t.toLowerCase() === "scalar") return [];
  return t.split(/[,×]/).map((d) => d.trim()).filter(Boolean);
}

function formatDims(dims) {
  const plain = dims.filter((d) => d !== "symmetric");
  return plain.length === 0 ? "scalar" : plain.join(", ");
}

// The "shapes" of a request: what the person declared or marked symmetric, nothing else.
// A symbol marked symmetric without a typed shape takes its dims from `inferred`.
function shapesPayload(inferred = state.inferred, symmetric = true) {
  const names = new Set([...Object.keys(state.declared), ...(symmetric ? state.symmetric : [])]);
  const known = Object.keys(inferred).length > 0;
  const shapes = {};
  for (const name of names) {
    if (known && !(name in inferred)) continue;
    const typed = (state.declared[name] || "").trim();
    let dims;
    if (typed) dims = parseDims(typed);
    else if (name in inferred) dims = inferred[name].filter((d) => d !== "symmetric");
    else continue;
    if (state.symmetric.has(name)) dims = [...dims, "symmetric"];
    shapes[name] = dims;
  }
  return Object.keys(shapes).length ? shapes : null;
}

const rows = new Map();  // name -> <tr>

function symbolRow(name) {
  const wrt = el("input", { type: "checkbox", "aria-label": `differentiate w.r.t. ${name}` });
  wrt.addEventListener("change", () => {
    if (wrt.checked) state.wrt.add(name); else state.wrt.delete(name);
  });
  const shape = el("input", { type: "text", "aria-label": `shape of ${name}` });
  shape.addEventListener("input", () => {
    if (shape.value.trim()) state.declared[name] = shape.value; else delete state.declared[name];
    schedulePreview();
  });
  const sym = el("input", { type: "checkbox", "aria-label": `${name} is symmetric` });
  sym.addEventListener("change", () => {
    if (sym.checked) state.symmetric.add(name); else state.symmetric.delete(name);
    schedulePreview();
  });
  const tr = el("tr", { "data-name": name },
    el("td", {}, wrt), el("td", { class: "sym" }, name), el("td", {}, shape), el("td", {}, sym));
  tr.inputs = { wrt, shape, sym };
  return tr;
}

function renderSymbols() {
  const body = document.querySelector("#symbols tbody");
  const names = Object.keys(state.inferred);
  for (const [name, tr] of rows) {
    if (!names.includes(name)) { tr.remove(); rows.delete(name); }
  }
  names.forEach((name, i) => {
    let tr = rows.get(name);
    if (!tr) { tr = symbolRow(name); rows.set(name, tr); }
    if (body.children[i] !== tr) body.insertBefore(tr, body.children[i] || null);
    const dims = state.inferred[name];
    const plain = dims.filter((d) => d !== "symmetric");
    tr.inputs.wrt.checked = state.wrt.has(name);
    tr.inputs.shape.placeholder = formatDims(dims);
    if (document.activeElement !== tr.inputs.shape) {
      tr.inputs.shape.value = state.declared[name] || "";
    }
    tr.inputs.sym.checked = state.symmetric.has(name) || dims.includes("symmetric");
    tr.inputs.sym.disabled = plain.length !== 2;
  });
}

// ----------------------------------------------------------------------------- errors

// Mirror the text into the backdrop, with the span [start, end) (code points) in a <mark>.
function highlight(text, start = null, end = null) {
  const backdrop = $("backdrop");
  backdrop.replaceChildren();
  const chars = Array.from(text);
  if (start === null || start === undefined) {
    backdrop.append(text);
  } else {
    const stop = Math.max(end ?? start + 1, start + 1);
    const marked = chars.slice(start, stop).join("") || " ";
    backdrop.append(chars.slice(0, start).join(""), el("mark", {}, marked),
                    chars.slice(stop).join(""));
  }
  backdrop.append("\n");  // keeps a trailing newline's height
  backdrop.scrollTop = $("expr").scrollTop;
}

function showError(err, text) {
  const box = $("error");
  box.replaceChildren(el("strong", {}, "Error: "), err.error || "something went wrong");
  box.hidden = false;
  $("editor").classList.toggle("has-error", err.position !== null && err.position !== undefined);
  highlight(text, err.position ?? null, err.end ?? null);
}

function clearError() {
  $("error").hidden = true;
  $("editor").classList.remove("has-error");
  highlight($("expr").value);
}

// ----------------------------------------------------------------------------- preview

function schedulePreview() {
  clearTimeout(previewTimer);
  previewTimer = setTimeout(preview, 250);
}

async function preview() {
  clearTimeout(previewTimer);
  const seq = ++previewSeq;
  const text = $("expr").value;
  if (!text.trim()) {
    $("preview").replaceChildren();
    state.inferred = {};
    renderSymbols();
    clearError();
    return false;
  }
  const syntax = $("syntax").value || null;
  let shapes = shapesPayload();
  if ([...state.symmetric].some((n) => !(state.declared[n] || "").trim())) {
    // infer the dims from the typed shapes alone first, so they may change with them
    const typed = await post("/api/parse", { expr: text, shapes: shapesPayload({}, false),
                                             syntax });
    if (typed.ok) shapes = shapesPayload(typed.body.shapes || {});
  }
  const r = await post("/api/parse", { expr: text, shapes, syntax });
  if (seq !== previewSeq) return false;  // a newer keystroke won
  if (!r.ok) {
    $("preview").classList.add("stale");
    showError(r.body, text);
    return false;
  }
  $("preview").classList.remove("stale");
  $("preview").replaceChildren(safeMath(r.body.mathml));
  state.inferred = r.body.shapes || {};
  renderSymbols();
  clearError();
  return true;
}

// ----------------------------------------------------------------------------- derive

function setStatus(text) { $("status").textContent = text; }

async function derive() {
  const text = $("expr").value;
  if (!text.trim()) return;
  const seq = ++deriveSeq;
  if (!(await preview()) || seq !== deriveSeq) return;
  const wrt = [...state.wrt].filter((n) => n in state.inferred);
  if (wrt.length === 0) {
    showError({ error: "tick at least one variable in the Symbols table to differentiate "
                       + "with respect to" }, text);
    return;
  }
  const request = { expr: text, wrt, shapes: shapesPayload(),
                    syntax: $("syntax").value || null, what: $("what").value };
  writeHash(request);
  $("result").classList.add("busy");
  setStatus("computing…");
  const started = performance.now();
  const r = await post("/api/derive?mathml=1", request);
  if (seq !== deriveSeq) return;
  $("result").classList.remove("busy");
  if (!r.ok) {
    setStatus("");
    showError(r.body, text);
    return;
  }
  setStatus(`${Math.round(performance.now() - started)} ms`);
  renderResult(r.body);
}

// The numerical check of one derivative: OK, MISMATCH, or inconclusive (with its reason);
// an error that is not a finite number arrives as null, with a "reason".
function checkLine(check) {
  if (!check) return null;
  const err = check.max_rel_error;
  const num = typeof err === "number" && Number.isFinite(err) ? err.toExponential(1) : "n/a";
  const guess = check.ok ? "ok" : err === null ? "inconclusive" : "mismatch";
  const verdict = String(check.verdict ?? guess).toLowerCase();
  const reason = check.reason ? ` — ${check.reason}` : "";
  if (verdict.startsWith("ok")) {
    return el("span", { class: "check ok" },
              `✓ agrees with finite differences (max rel. error ${num})`);
  }
  if (verdict.startsWith("inconclusive")) {
    return el("span", { class: "check unsure" },
              `? the numerical check is inconclusive here${reason}`);
  }
  return el("span", { class: "check bad" },
            `✗ numerical check failed (max rel. error ${num})${reason}`);
}

// Steps and other parts whose layout the core may extend: rendered by their JSON type.
function generic(value) {
  if (Array.isArray(value)) return el("ol", {}, ...value.map((v) => el("li", {}, generic(v))));
  if (value && typeof value === "object") {
    if (typeof value.mathml === "string" || typeof value.text === "string") {
      const label = value.rule || value.name || value.title || value.note;
      const parts = [mathOrText(value)];
      if (label) parts.unshift(el("span", { class: "name" }, `${label}: `));
      return el("div", { class: "part" }, ...parts);
    }
    const dl = el("div");
    for (const [k, v] of Object.entries(value)) {
      dl.append(el("div", { class: "name" }, el("strong", {}, k)), generic(v));
    }
    return dl;
  }
  return el("span", {}, String(value));
}

function renderResult(report) {
  $("result-empty").hidden = true;
  $("result").classList.remove("stale");
  const list = $("derivatives");
  list.replaceChildren();
  for (const [name, d] of Object.entries(report.derivatives || {})) {
    const plain = d.text ?? d.unicode ?? "";
    const row = el("div", { class: "derivative", "data-wrt": name },
      el("div", { class: "math" }, mathOrText(d)),
      el("div", { class: "plain" }, el("code", {}, `${d.lhs ?? `∂f/∂${name}`} = ${plain}`),
         copyButton(() => plain)));
    const c = d.conjugate;  // not holomorphic: the Wirtinger pair's second half, J̄
    if (c) {
      const cPlain = c.text ?? c.unicode ?? "";
      row.append(el("div", { class: "math" }, mathOrText(c)),
                 el("div", { class: "plain" }, el("code", {}, `${c.lhs ?? `∂/∂conj(${name})`} = ${cPlain}`),
                    copyButton(() => cPlain)));
    }
    const check = checkLine((report.check || {})[name]);
    if (check) row.append(check);
    list.append(row);
  }

  const where = $("where");
  where.replaceChildren();
  const parts = report.where || [];
  if (parts.length) {
    where.append(el("h3", { class: "hint" }, "where"));
    for (const p of parts) {
      // a factorization names its left side per style: UΣVᵀ = X (thin SVD)
      const shown = p && typeof p === "object" ? (p.lhs && p.lhs.unicode) || p.name : "";
      const name = shown ? `${shown} =` : "";
      where.append(el("div", { class: "part" }, el("span", { class: "name" }, name),
                      mathOrText(p)));
    }
  }

  for (const note of report.notes || []) where.append(el("p", { class: "hint note" }, note));

  const steps = $("steps");
  steps.hidden = !report.steps;
  $("steps-body").replaceChildren(report.steps ? generic(report.steps) : "");

  const code = $("code");
  code.replaceChildren();
  for (const [backend, source] of Object.entries(report.code || {})) {
    const block = el("details", { "data-backend": backend },
      el("summary", {}, `Code: ${backend}`, copyButton(() => source)),
      el("pre", {}, el("code", {}, source)));
    if (backend === "numpy") block.open = true;
    code.append(block);
  }
  $("share").hidden = false;
  $("share-link").href = location.href;
}

// ----------------------------------------------------------------------------- URL state

function writeHash(request) {
  const params = new URLSearchParams({ expr: request.expr, wrt: request.wrt.join(",") });
  if (request.what !== "grad") params.set("what", request.what);
  if (request.syntax) params.set("syntax", request.syntax);
  if (request.shapes) params.set("shapes", JSON.stringify(request.shapes));
  history.replaceState(null, "", `#${params}`);
}

// Load a state { expr, wrt, what, syntax, shapes } into the page, then derive.
function load(s) {
  $("expr").value = s.expr || "";
  $("syntax").value = s.syntax || "";
  $("what").value = s.what || "grad";
  state.wrt = new Set(s.wrt || []);
  state.declared = {};
  state.symmetric = new Set();
  for (const [name, dims] of Object.entries(s.shapes || {})) {
    if (!Array.isArray(dims)) continue;
    const plain = dims.filter((d) => d !== "symmetric").map(String);
    state.declared[name] = plain.length ? plain.join(", ") : "scalar";
    if (dims.includes("symmetric")) state.symmetric.add(name);
  }
  state.inferred = {};
  highlight($("expr").value);
  derive();
}

function readHash() {
  const params = new URLSearchParams(location.hash.slice(1));
  if (!params.get("expr")) return null;
  let shapes = {};
  try { shapes = JSON.parse(params.get("shapes") || "{}"); } catch (err) { shapes = {}; }
  return {
    expr: params.get("expr"),
    wrt: (params.get("wrt") || "").split(",").filter(Boolean),
    what: params.get("what") || "grad",
    syntax: params.get("syntax") || "",
    shapes,
  };
}

// ----------------------------------------------------------------------------- start

async function loadExamples() {
  const res = await fetch("/api/examples");
  const examples = await res.json();
  const list = $("example-list");
  for (const ex of examples) {
    const button = el("button", { type: "button", class: "example" },
      el("strong", {}, ex.title), el("code", {}, ex.expr));
    button.addEventListener("click", () => {
      $("examples").open = false;
      load(ex);
    });
    list.append(el("li", {}, button));
  }
  return examples;
}

document.addEventListener("DOMContentLoaded", async () => {
  const expr = $("expr");
  expr.addEventListener("input", () => {
    highlight(expr.value);
    $("result").classList.add("stale");  // the result shown is for an earlier input
    schedulePreview();
  });
  expr.addEventListener("scroll", () => { $("backdrop").scrollTop = expr.scrollTop; });
  expr.addEventListener("keydown", (e) => {
    if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) { e.preventDefault(); derive(); }
  });
  $("syntax").addEventListener("change", schedulePreview);
  $("go").addEventListener("click", derive);
  window.addEventListener("hashchange", () => { const s = readHash(); if (s) load(s); });
  document.addEventListener("click", (e) => {  // close the examples menu on a click outside
    if (!$("examples").contains(e.target)) $("examples").open = false;
  });
  const examples = await loadExamples();
  const fromLink = readHash();
  if (fromLink) load(fromLink);
  else if (examples.length) load(examples[0]);
});
