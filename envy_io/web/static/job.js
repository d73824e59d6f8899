// One job: frames coloured by state with thumbnails, preview with attempts and a live log, requeue, charts.
import { badge, duration, h, jobActions, live, post, say } from "/static/common.js";

const jobId = decodeURIComponent(location.pathname.split("/").pop());
const grid = document.getElementById("grid");
const message = document.getElementById("message");
const requeueButton = document.getElementById("requeue");
const dialog = document.getElementById("preview");
const selected = new Set();
const tiles = new Map(); // item name -> { el, key }
let job = null;
let summary = null;
let openItem = null;
let openLog = null;
let logTimer = null;

function meta() {
  if (!summary) return;
  document.getElementById("title").replaceChildren(`${summary.name} `, badge(summary.state));
  document.title = `${summary.name} · Envy`;
  const dl = document.getElementById("meta");
  const row = (k, v) => [h("dt", { text: k }), h("dd", {}, v)];
  dl.replaceChildren(...row("Job", summary.id), ...row("User", summary.user || "?"), ...row("Renderer", summary.renderer),
    ...row("Priority", String(summary.priority)),
    ...row("Progress", `${summary.done}/${summary.total} done, ${summary.running} running, ${summary.failed} failed, ${summary.pending} pending (${summary.percent}%)`),
    ...row("Elapsed", duration(summary.elapsed_s)), ...row("ETA", duration(summary.eta_s)));
  const output = document.getElementById("output");
  if (output.value !== summary.output) output.value = summary.output || "(as set in the scene)";
  const actions = document.getElementById("actions");
  const key = [summary.job_state, summary.archived, summary.failed > 0, summary.priority].join("|");
  if (actions.dataset.key !== key && !actions.contains(document.activeElement)) {
    actions.replaceChildren(jobActions(summary, message));
    actions.dataset.key = key;
  }
}

function tile(item) {
  const box = h("input", { type: "checkbox", "aria-label": `select ${item.name}`, checked: selected.has(item.name) });
  box.addEventListener("change", () => { box.checked ? selected.add(item.name) : selected.delete(item.name); updateSelection(); });
  const pic = item.thumb
    ? h("img", { src: `/thumbs/${encodeURIComponent(jobId)}/${encodeURIComponent(item.base)}.jpg?h=${encodeURIComponent(item.host)}`, alt: `thumbnail of ${item.name}`, loading: "lazy" })
    : (item.state === "done" ? "no preview yet" : item.state);
  const label = item.frame !== null ? String(item.frame) : item.base;
  const open = h("button", { class: "open", "data-key": `open:${item.name}`, title: `${item.name}: ${item.state}${item.host ? " on " + item.host : ""}`, onclick: () => preview(item.name) },
    h("div", { class: "pic" }, pic),
    h("div", { class: "label" }, h("span", { text: label }), h("span", { text: item.seconds ? `${item.seconds.toFixed(1)}s` : item.state })));
  return h("div", { class: `tile ${item.state}${selected.has(item.name) ? " selected" : ""}`, role: "listitem", "data-item": item.name, "data-state": item.state }, box, open);
}

function renderGrid() {
  const keep = new Set(job.items.map((i) => i.name));
  for (const [name, t] of tiles) if (!keep.has(name)) { t.el.remove(); tiles.delete(name); }
  for (const item of job.items) {
    const key = JSON.stringify(item) + selected.has(item.name);
    const old = tiles.get(item.name);
    if (old && old.key === key) { grid.append(old.el); continue; }
    const hadFocus = old && old.el.contains(document.activeElement);
    const el = tile(item);
    if (old) old.el.replaceWith(el);
    grid.append(el);
    tiles.set(item.name, { el, key });
    if (hadFocus) el.querySelector("button.open").focus();
  }
  charts();
  if (openItem && keep.has(openItem)) refreshPreview();
}

function updateSelection() {
  requeueButton.disabled = selected.size === 0;
  document.getElementById("selection").textContent = selected.size ? `${selected.size} selected` : "";
  if (job) renderGrid();
}

requeueButton.addEventListener("click", async () => {
  try {
    const result = await post(`/api/jobs/${encodeURIComponent(jobId)}/requeue`, { items: [...selected] });
    say(message, result.lines.join("; "));
    selected.clear();
    updateSelection();
  } catch (err) { say(message, err.message, true); }
});
document.getElementById("select-failed").addEventListener("click", () => {
  for (const i of job ? job.items : []) if (i.state === "failed") selected.add(i.name);
  updateSelection();
});
document.getElementById("select-none").addEventListener("click", () => { selected.clear(); updateSelection(); });
document.getElementById("copy").addEventListener("click", async () => {
  const output = document.getElementById("output");
  output.select();
  try { await navigator.clipboard.writeText(output.value); say(message, "output folder path copied"); }
  catch { say(message, "path selected: press Ctrl-C to copy"); }
});

// -- charts: plain SVG ------------------------------------------------------------------------
const SVG = "http://www.w3.org/2000/svg";
function svg(tag, attrs = {}, text = null) {
  const el = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, v);
  if (text !== null) el.textContent = text;
  return el;
}
function barChart(target, bars, width = 460, height = 160) {
  const root = svg("svg", { width, height, viewBox: `0 0 ${width} ${height}`, role: "img", "aria-label": target.previousSibling?.textContent || "chart" });
  if (!bars.length) { root.append(svg("text", { x: 10, y: 20 }, "no finished frames with a render time yet")); target.replaceChildren(root); return; }
  const max = Math.max(...bars.map((b) => b.value)) || 1;
  const left = 34, bottom = 18, w = (width - left - 6) / bars.length;
  root.append(svg("text", { x: 2, y: 12 }, `${max.toFixed(1)}s`), svg("text", { x: 2, y: height - bottom }, "0"));
  bars.forEach((b, i) => {
    const bh = ((height - bottom - 14) * b.value) / max;
    const rect = svg("rect", { x: left + i * w + 1, y: height - bottom - bh, width: Math.max(1, w - 2), height: bh, fill: "#4c8dff" });
    rect.append(svg("title", {}, `${b.label}: ${b.value.toFixed(1)} s`));
    root.append(rect);
    if (bars.length <= 24 || i % Math.ceil(bars.length / 12) === 0) root.append(svg("text", { x: left + i * w + w / 2 - 6, y: height - 4 }, b.label));
  });
  target.replaceChildren(root);
}
function charts() {
  const timed = job.items.filter((i) => i.seconds);
  barChart(document.getElementById("chart-frames"), timed.map((i) => ({ label: String(i.frame ?? i.base), value: i.seconds })));
  const hosts = new Map();
  for (const i of timed) { const e = hosts.get(i.host) || { sum: 0, n: 0 }; e.sum += i.seconds; e.n += 1; hosts.set(i.host, e); }
  barChart(document.getElementById("chart-hosts"), [...hosts].sort().map(([host, e]) => ({ label: host, value: e.sum / e.n })), 300);
}

// -- preview: larger picture, attempts, live log tail -----------------------------------------------
async function preview(name) {
  openItem = name;
  openLog = null;
  if (!dialog.open) dialog.showModal();
  await refreshPreview();
}
async function refreshPreview() {
  const name = openItem;
  const item = job.items.find((i) => i.name === name);
  document.getElementById("preview-title").textContent = name;
  const img = document.getElementById("preview-img");
  if (item && item.thumb) { img.src = `/thumbs/${encodeURIComponent(jobId)}/${encodeURIComponent(item.base)}.jpg?h=${encodeURIComponent(item.host)}`; img.alt = `preview of ${name}`; img.hidden = false; }
  else img.hidden = true;
  document.getElementById("preview-info").textContent = item ? `${item.state}${item.host ? " · " + item.host : ""}${item.failures ? " · " + item.failures + " failure(s)" : ""}` : "";
  const response = await fetch(`/api/jobs/${encodeURIComponent(jobId)}/items/${encodeURIComponent(name)}`);
  if (!response.ok || openItem !== name) return;
  const data = await response.json();
  const rows = data.attempts.map((a) => h("tr", {},
    h("td", { text: String(a.attempt) }), h("td", { text: a.host }), h("td", { text: new Date(a.modified * 1000).toLocaleString() }),
    h("td", { text: a.reason || "" }),
    h("td", {}, h("button", { onclick: () => { openLog = a.log; tailLog(); }, text: "Show log", "data-key": `log:${a.log}` }))));
  document.querySelector("#attempts tbody").replaceChildren(...(rows.length ? rows : [h("tr", {}, h("td", { colspan: 5, text: "no attempts yet" }))]));
  if (!openLog && data.attempts.length) { openLog = data.attempts[data.attempts.length - 1].log; tailLog(); }
}
async function tailLog() {
  clearTimeout(logTimer);
  if (!dialog.open || !openLog) return;
  document.getElementById("log-name").textContent = openLog;
  const pre = document.getElementById("log");
  const atEnd = pre.scrollTop + pre.clientHeight >= pre.scrollHeight - 4;
  const response = await fetch(`/api/jobs/${encodeURIComponent(jobId)}/logs/${encodeURIComponent(openLog)}`);
  pre.textContent = await response.text();
  if (atEnd) pre.scrollTop = pre.scrollHeight;
  const item = job.items.find((i) => i.name === openItem);
  if (item && item.state === "running") logTimer = setTimeout(tailLog, 1500); // live while it renders
}
dialog.addEventListener("close", () => { openItem = null; openLog = null; clearTimeout(logTimer); });

live((snap) => { summary = snap.jobs.find((j) => j.id === jobId) || summary; meta(); },
     (detail) => { job = detail; renderGrid(); }, jobId);
fetch(`/api/jobs/${encodeURIComponent(jobId)}`).then((r) => r.ok ? r.json() : null).then((d) => { if (d && !job) { job = d; summary = summary || d; meta(); renderGrid(); } });
