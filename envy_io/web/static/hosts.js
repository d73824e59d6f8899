// The hosts page: every agent, its frames and heartbeat; send a command to the selected hosts.
import { badge, duration, h, live, post, say } from "/static/common.js";

const body = document.querySelector("#hosts tbody");
const message = document.getElementById("message");
const field = document.getElementById("command");
const fieldError = document.getElementById("command-error");
const selectAll = document.getElementById("select-all");
const selected = new Set();
const rows = new Map();

function worker(w) {
  const pct = typeof w.percent === "number" ? w.percent : 0;
  return h("div", { class: "worker" }, `${w.frame ?? w.job ?? ""}`,
    h("div", { class: "bar", role: "img", "aria-label": `${pct.toFixed(0)}%` }, h("span", { class: "running", style: `width:${pct}%` })),
    `${pct.toFixed(0)}% ${duration(w.elapsed_s)}`);
}

function render(snap) {
  const age = Math.max(0, Date.now() / 1000 - snap.taken_at);
  const keep = new Set(snap.hosts.map((x) => x.host));
  for (const [host, entry] of rows) if (!keep.has(host)) { entry.row.remove(); rows.delete(host); selected.delete(host); }
  for (const host of snap.hosts) {
    let entry = rows.get(host.host);
    if (!entry) {
      const box = h("input", { type: "checkbox", "aria-label": `select ${host.host}`, "data-host": host.host });
      box.addEventListener("change", () => { box.checked ? selected.add(host.host) : selected.delete(host.host); });
      entry = { row: h("tr", { "data-host": host.host }), boxCell: h("td", {}, box), box };
      rows.set(host.host, entry);
    }
    entry.box.checked = selected.has(host.host);
    const state = host.state === "locked" && host.locked_reason ? `locked: ${host.locked_reason}` : host.state;
    const heartbeat = host.silent_s === null ? "never" : `${duration(host.silent_s + age)} ago`;
    entry.row.replaceChildren(entry.boxCell, h("td", { text: host.host }), h("td", {}, badge(state)),
      h("td", {}, host.workers.length ? host.workers.map(worker) : (host.work || "")),
      h("td", { class: "num", text: heartbeat }), h("td", { text: host.version }), h("td", { text: host.user }),
      h("td", { text: host.message }));
    entry.row.dataset.state = host.state;
    body.append(entry.row);
  }
  document.getElementById("empty").hidden = snap.hosts.length > 0;
}

selectAll.addEventListener("change", () => {
  for (const [host, entry] of rows) { entry.box.checked = selectAll.checked; selectAll.checked ? selected.add(host) : selected.delete(host); }
});

document.getElementById("command-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  say(fieldError, "");
  field.removeAttribute("aria-invalid");
  try {
    const result = await post("/api/hosts/send", { hosts: [...selected].sort(), command: field.value });
    say(message, result.lines.join("; "));
  } catch (err) {
    say(fieldError, err.message, true);
    field.setAttribute("aria-invalid", "true");
    field.focus();
  }
});

live(render);
