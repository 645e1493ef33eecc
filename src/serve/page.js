"use strict";
// Everything shown from a bundle goes through textContent: bundle text is
// untrusted and must never become markup.
const $ = (sel) => document.querySelector(sel);
function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "class") node.className = v; else node.setAttribute(k, v);
  }
  for (const c of children) if (c != null) node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return node;
}
// The API token lives in this tab only (sessionStorage: no cookie, so no
// other site can make the browser send it). It is only ever typed in: a
// token taken from a link would let whoever wrote the link sign this tab
// in as themselves and own what is uploaded from it.
const TOKEN_KEY = "triage-token";
function tokenStatus(text, error) {
  const status = $("#token-status");
  status.textContent = text;
  status.className = error ? "error" : "muted";
}
function showToken() {
  const set = !!sessionStorage.getItem(TOKEN_KEY);
  tokenStatus(set ? "token set for this tab" : "enter an API token to see and upload bundles", !set);
  $("#forget-token").hidden = !set;
}
// Upload names may hold control or bidirectional characters that reorder
// what is shown around them: they are shown escaped, as \u{…}.
function shownName(name) {
  return String(name).replace(/[\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]/g,
    (c) => "\\u{" + c.charCodeAt(0).toString(16).toUpperCase() + "}");
}
async function api(path, options) {
  options = Object.assign({}, options);
  const token = sessionStorage.getItem(TOKEN_KEY);
  options.headers = Object.assign({}, options.headers, token ? { Authorization: "Bearer " + token } : {});
  const response = await fetch(path, options);
  if (response.status === 401) tokenStatus(token ? "the token was refused (revoked or mistyped): enter another" : "enter an API token", true);
  let body = null;
  try { body = await response.json(); } catch (_) { body = null; }
  if (!response.ok) {
    const err = new Error((body && body.error) || response.statusText);
    err.hint = body && body.hint;
    err.status = response.status;
    err.retryAfter = response.headers.get("Retry-After");
    throw err;
  }
  return body;
}
let selected = new URLSearchParams(location.search).get("job");
let pollTimer = null;

async function refreshJobs() {
  try {
    const { jobs } = await api("/v1/bundles?limit=30");
    const list = $("#jobs");
    list.replaceChildren(...jobs.map((job) => {
      const li = el("li", { "data-id": job.id, class: job.id === selected ? "selected" : "" },
        shownName(job.name), el("span", { class: "status " + job.status }, job.status));
      if (job.diagnoses && job.diagnoses.length) li.append(el("div", { class: "muted" }, job.diagnoses.join(", ")));
      li.addEventListener("click", () => select(job.id));
      return li;
    }));
    if (jobs.some((j) => j.status === "queued" || j.status === "running")) schedule(refreshJobs, 1500);
  } catch (e) { /* the list is refreshed again after the next upload */ }
}
function schedule(fn, ms) { setTimeout(fn, ms); }

function select(id) {
  selected = id;
  history.replaceState(null, "", "?job=" + encodeURIComponent(id));
  for (const li of document.querySelectorAll("#jobs li")) li.classList.toggle("selected", li.dataset.id === id);
  showJob(id);
}

async function showJob(id) {
  clearTimeout(pollTimer);
  const out = $("#result");
  let job;
  try { job = await api("/v1/bundles/" + encodeURIComponent(id)); }
  catch (e) { out.replaceChildren(el("p", { class: "error" }, e.message), el("p", { class: "muted" }, e.hint || "")); return; }
  if (id !== selected) return;
  const head = el("h2", {}, shownName(job.name), el("span", { class: "status " + job.status, id: "job-status" }, job.status));
  if (job.status === "queued" || job.status === "running") {
    out.replaceChildren(head, el("p", { class: "muted" }, job.status === "queued" ? "Waiting for a worker…" : "Diagnosing…"));
    pollTimer = setTimeout(() => showJob(id), 700);
    return;
  }
  out.replaceChildren(head);
  if (job.error) out.append(el("p", { class: "error" }, job.error));
  if (job.result) renderReport(out, job.result);
  refreshJobs();
}

function renderReport(out, report) {
  const byId = new Map(report.diagnoses.map((d) => [d.rule_id, d]));
  // The one-line verdict first, as the text report opens.
  out.append(el("p", { id: "verdict" }, el("strong", {}, report.verdict)));
  if (report.failed) return;
  out.append(el("p", { class: "muted", id: "summary" },
    `${report.diagnoses.length} diagnos${report.diagnoses.length === 1 ? "is" : "es"}, ` +
    `${report.inconclusive.length} inconclusive, ${report.rules_evaluated} rules evaluated` +
    (report.collected_at ? `, collected ${report.collected_at}` : "")));
  if (!report.diagnoses.length) out.append(el("p", { id: "no-diagnosis" }, "No rule fired."));
  // Root causes first, each followed by the symptoms it explains.
  const shown = new Set();
  const roots = report.diagnoses.filter((d) => !d.explained_by.some((r) => byId.has(r)));
  const ordered = [];
  for (const d of roots) {
    ordered.push([d, false]); shown.add(d.rule_id);
    for (const s of d.explains) if (byId.has(s) && !shown.has(s)) { ordered.push([byId.get(s), true]); shown.add(s); }
  }
  for (const d of report.diagnoses) if (!shown.has(d.rule_id)) ordered.push([d, true]);
  for (const [d, symptom] of ordered) out.append(renderDiagnosis(d, symptom));
  if (report.excluded.length) {
    const box = el("div", { class: "diagnosis", id: "excluded" }, el("h2", {}, "Ruled out by a more specific finding"));
    for (const x of report.excluded) box.append(el("p", { class: "muted" }, `${x.rule_id} ${x.title} (by ${x.by.join(", ")})`));
    out.append(box);
  }
  const unexplained = report.unexplained.templates.slice(0, 5);
  if (unexplained.length) {
    const box = el("div", { class: "diagnosis", id: "unexplained" },
      el("h2", {}, `Unexplained errors and warnings (${report.unexplained.total})`));
    for (const t of unexplained) {
      box.append(el("p", {}, el("strong", {}, `${t.count}× ${t.level}`), ` in ${t.source}: `, el("code", {}, t.template),
        el("div", { class: "muted" }, `${t.example.file}:${t.example.line}`)));
    }
    out.append(box);
  }
  // Only what would decide something this bundle shows.
  if (report.collect_next.length) {
    const box = el("div", { class: "diagnosis", id: "collect-next" }, el("h2", {}, "Collect next"));
    for (const c of report.collect_next) {
      box.append(el("p", {}, el("strong", {}, c.source), ": ", c.collect, el("div", { class: "muted" }, "decides " + c.decides.join(", "))));
    }
    out.append(box);
  }
  if (report.warnings.length) {
    const box = el("div", { class: "diagnosis" }, el("h2", {}, "Warnings"));
    for (const w of report.warnings) box.append(el("p", { class: "muted" }, (w.path ? w.path + ": " : "") + w.message));
    out.append(box);
  }
}

// The remediation is Markdown; its **bold** and `code` are shown as such,
// everything else as text (never parsed as HTML).
function inlineMarkdown(text) {
  const nodes = [];
  for (const [i, part] of text.split(/(\*\*[^*]+\*\*|`[^`]+`)/).entries()) {
    if (i % 2 === 0) nodes.push(part);
    else if (part.startsWith("**")) nodes.push(el("strong", {}, part.slice(2, -2)));
    else nodes.push(el("code", {}, part.slice(1, -1)));
  }
  return nodes;
}

const utf8 = new TextDecoder();

function renderDiagnosis(d, symptom) {
  const box = el("div", { class: "diagnosis" + (symptom ? " symptom" : ""), id: "diagnosis-" + d.rule_id });
  box.append(el("div", {},
    el("span", { class: "sev " + d.severity }, d.severity),
    el("a", { href: "/docs/rules/" + encodeURIComponent(d.rule_id) + ".html", class: "rule-link" }, d.rule_id),
    " ", d.title));
  if (d.explained_by.length) box.append(el("div", { class: "muted" }, "explained by " + d.explained_by.join(", ")));
  box.append(el("p", {}, d.message));
  if (d.evidence.length) {
    const pre = el("div", { class: "evidence" });
    for (const e of d.evidence) {
      const line = el("div", {}, el("span", { class: "loc" }, `${e.file}:${e.line}  `));
      // Highlights are byte ranges of the UTF-8 text; JavaScript strings
      // count UTF-16 units, so cut the bytes.
      const bytes = new TextEncoder().encode(e.text);
      const text = (a, b) => utf8.decode(bytes.subarray(a, b));
      let at = 0;
      for (const h of (e.highlights || []).slice().sort((a, b) => a.start - b.start)) {
        if (h.start < at) continue;
        line.append(text(at, h.start), el("mark", {}, text(h.start, h.end)));
        at = h.end;
      }
      line.append(text(at, bytes.length));
      pre.append(line);
    }
    box.append(pre);
    if (d.evidence_total > d.evidence.length) box.append(el("div", { class: "muted" }, `${d.evidence_total} matching records in all`));
  }
  box.append(el("h3", {}, "Remediation"), el("div", { class: "remediation" }, ...inlineMarkdown(d.remediation)));
  // The other causes the same evidence fits, and how to tell them apart.
  for (const a of d.alternatives) {
    box.append(el("div", { class: "alternative" },
      el("h3", {}, "Also possible: ", el("a", { href: "/docs/rules/" + encodeURIComponent(a.rule_id) + ".html" }, a.rule_id), " ", a.title),
      el("p", {}, "Tell apart: ", ...inlineMarkdown(a.tell_apart))));
  }
  return box;
}

$("#upload-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const file = $("#file").files[0];
  const status = $("#upload-status");
  status.className = "";
  if (!file) { status.textContent = "Choose a bundle archive first."; return; }
  $("#upload").disabled = true;
  status.textContent = `Uploading ${file.name}…`;
  try {
    const job = await api("/v1/bundles?name=" + encodeURIComponent(file.name), {
      method: "POST",
      // The service tells archives by their first bytes; browsers guess
      // types from names, not always ones it lists.
      headers: { "Content-Type": "application/octet-stream" },
      body: file,
    });
    status.textContent = "";
    await refreshJobs();
    select(job.id);
  } catch (e) {
    status.className = "error";
    status.textContent = e.message + (e.hint ? ` (${e.hint})` : "") + (e.retryAfter ? ` Retry in ${e.retryAfter} s.` : "");
  } finally {
    $("#upload").disabled = false;
  }
});

$("#token-form").addEventListener("submit", (event) => {
  event.preventDefault();
  const value = $("#token").value.trim();
  if (!value) return;
  sessionStorage.setItem(TOKEN_KEY, value);
  $("#token").value = "";
  start();
});
$("#forget-token").addEventListener("click", () => {
  sessionStorage.removeItem(TOKEN_KEY);
  $("#jobs").replaceChildren();
  $("#rules-info").textContent = "";
  showToken();
});

function start() {
  showToken();
  // Rules are an admin's to see; other roles go without the line.
  api("/v1/rules").then((r) => {
    $("#rules-info").textContent = `${r.rules.length} rules, version ${r.version}`;
    if (r.reload_error) {
      $("#rules-info").append(el("span", { class: "error", id: "reload-error" },
        ` — the last rule reload failed (${r.reload_error.error}); the rules above are still in use`));
    }
  }).catch(() => {});
  refreshJobs();
  if (selected) showJob(selected);
}
start();
