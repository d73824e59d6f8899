// The jobs page: every job with state, progress and actions; filter by user and state.
import { badge, duration, h, jobActions, live, progressBar } from "/static/common.js";

const body = document.querySelector("#jobs tbody");
const message = document.getElementById("message");
const userFilter = document.getElementById("filter-user");
const stateFilter = document.getElementById("filter-state");
const showArchived = document.getElementById("show-archived");
const rows = new Map(); // job id -> { row, actionsKey }
let latest = null;

function visible(job) {
  if (job.archived && !showArchived.checked) return false;
  if (userFilter.value && job.user !== userFilter.value) return false;
  if (stateFilter.value && job.state !== stateFilter.value) return false;
  return true;
}

function cells(job) {
  return [
    h("a", { href: `/job/${encodeURIComponent(job.id)}`, text: job.name, title: job.id }),
    badge(job.state), job.user || "?", job.renderer, progressBar(job),
    job.done, job.running, job.failed, job.pending, duration(job.elapsed_s), duration(job.eta_s),
  ];
}

function render() {
  if (!latest) return;
  const users = [...new Set(latest.jobs.map((j) => j.user).filter(Boolean))].sort();
  const chosen = userFilter.value;
  if ([...userFilter.options].slice(1).map((o) => o.value).join() !== users.join()) {
    userFilter.replaceChildren(h("option", { value: "", text: "everyone" }), ...users.map((u) => h("option", { value: u, text: u })));
    userFilter.value = chosen;
  }
  const shown = latest.jobs.filter(visible);
  const keep = new Set(shown.map((j) => j.id));
  for (const [id, entry] of rows) if (!keep.has(id)) { entry.row.remove(); rows.delete(id); }
  for (const job of shown) {
    let entry = rows.get(job.id);
    if (!entry) {
      entry = { row: h("tr", { "data-job": job.id }), actionsKey: null, actionsCell: h("td") };
      rows.set(job.id, entry);
    }
    const tds = cells(job).map((c, i) => h("td", { class: i >= 5 && i <= 10 ? "num" : null }, c));
    // The actions cell is rebuilt only when what it offers changed, so a priority being typed survives updates.
    const actionsKey = [job.job_state, job.archived, job.failed > 0, job.priority].join("|");
    if (entry.actionsKey !== actionsKey && !entry.actionsCell.contains(document.activeElement)) {
      entry.actionsCell.replaceChildren(jobActions(job, message));
      entry.actionsKey = actionsKey;
    }
    entry.row.replaceChildren(...tds, entry.actionsCell);
    entry.row.dataset.state = job.state;
    body.append(entry.row); // keeps the snapshot's order
  }
  document.getElementById("empty").hidden = shown.length > 0;
}

for (const el of [userFilter, stateFilter, showArchived]) el.addEventListener("change", render);
live((snap) => { latest = snap; render(); });
