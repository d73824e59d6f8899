// Envy web monitor: shared helpers. Plain modern JavaScript, no build step, no external requests.

export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === null || v === undefined || v === false) continue;
    if (k === "class") el.className = v;
    else if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else if (k === "text") el.textContent = v;
    else el.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children.flat()) if (c !== null && c !== undefined) el.append(c instanceof Node ? c : String(c));
  return el;
}

export function duration(s) {
  if (s === null || s === undefined) return "--:--";
  s = Math.round(s);
  const hh = Math.floor(s / 3600), mm = Math.floor((s % 3600) / 60), ss = s % 60;
  const two = (n) => String(n).padStart(2, "0");
  return hh ? `${hh}:${two(mm)}:${two(ss)}` : `${two(mm)}:${two(ss)}`;
}

export const slug = (text) => String(text).toLowerCase().replace(/[^a-z0-9]+/g, "-");
export const badge = (state) => h("span", { class: `badge ${slug(state)}`, text: state });

export function progressBar(job) {
  const total = job.total || 1;
  const pct = (n) => `${(100 * n) / total}%`;
  return h("div", { class: "bar", role: "img", "aria-label": `${job.done} of ${job.total} done, ${job.failed} failed` },
    h("span", { class: "done", style: `width:${pct(job.done)}` }),
    h("span", { class: "failed", style: `width:${pct(job.failed)}` }),
    h("span", { class: "running", style: `width:${pct(job.running)}` }));
}

export async function post(url, data) {
  const response = await fetch(url, {
    method: "POST", headers: { "Content-Type": "application/json", "X-Envy-Request": "1" },
    body: JSON.stringify(data),
  });
  let body = {};
  try { body = await response.json(); } catch { body = { error: `HTTP ${response.status}` }; }
  if (!response.ok) throw new Error(body.error || `HTTP ${response.status}`);
  return body;
}

export function say(el, text, isError = false) {
  el.textContent = text;
  el.classList.toggle("error", isError);
}

// One EventSource per tab; the server has one share reader for all of them.
export function live(onSnapshot, onJob = null, job = null) {
  const indicator = document.getElementById("live");
  const url = "/api/events" + (job ? `?job=${encodeURIComponent(job)}` : "");
  const source = new EventSource(url);
  source.addEventListener("snapshot", (e) => {
    const snap = JSON.parse(e.data);
    if (indicator) {
      indicator.textContent = `live · read ${new Date(snap.taken_at * 1000).toLocaleTimeString()}`;
      indicator.classList.remove("off");
    }
    onSnapshot(snap);
  });
  if (onJob) source.addEventListener("job", (e) => onJob(JSON.parse(e.data)));
  source.onerror = () => { if (indicator) { indicator.textContent = "reconnecting…"; indicator.classList.add("off"); } };
  return source;
}

// The job actions, as on the CLI (envy_io/job_actions.py does the work).
export function jobActions(job, message) {
  const act = async (action, value) => {
    try {
      const result = await post(`/api/jobs/${encodeURIComponent(job.id)}/action`, { action, value });
      say(message, result.lines.join("; "));
    } catch (err) { say(message, `${job.name}: ${err.message}`, true); }
  };
  const paused = job.job_state === "paused";
  const priority = h("input", { type: "number", min: 0, max: 100, value: job.priority, "aria-label": `priority of ${job.name}` });
  return h("div", { class: "actions" },
    paused ? h("button", { onclick: () => act("resume"), text: "Resume" })
           : h("button", { onclick: () => act("pause"), text: "Pause", disabled: job.job_state === "cancelled" }),
    h("button", { class: "danger", onclick: () => act("cancel"), text: "Cancel", disabled: job.job_state === "cancelled" }),
    priority, h("button", { onclick: () => act("priority", priority.value), text: "Set priority" }),
    h("button", { onclick: () => act("reset-failed"), text: "Reset failed", disabled: !job.failed }),
    job.archived ? h("button", { onclick: () => act("unarchive"), text: "Unarchive" })
                 : h("button", { onclick: () => act("archive"), text: "Archive" }));
}

// Re-render only when the data changed, keeping focus on the same control where possible.
export function keepFocus(render) {
  const active = document.activeElement;
  const id = active && active.dataset ? active.dataset.key : null;
  render();
  if (id) { const again = document.querySelector(`[data-key="${CSS.escape(id)}"]`); if (again) again.focus(); }
}
