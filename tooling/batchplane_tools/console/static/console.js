// batchplane console: plain JS, no build step. Every read goes to /api/<route>, which the console's
// server proxies to the REST API (signing it for a deployed API). Pages: #/ (jobs, filters, summary),
// #/jobs/<id>?tenant=<t> (attempts timeline, decisions, artifacts, log), #/lineage?uri=<s3 uri>.
// Live: each page polls every 2 s and redraws only what changed; API Gateway has no server push.
"use strict";

const POLL_MS = 2000;
const SUMMARY_EVERY = 5; // polls between summaries: a summary reads up to 1,000 jobs
const STATUSES = ["QUEUED", "SUBMITTED", "PENDING", "RUNNABLE", "STARTING", "RUNNING", "RETRY_WAIT", "SUCCEEDED", "FAILED", "CANCELLED"];
const TERMINAL = new Set(["SUCCEEDED", "FAILED", "CANCELLED"]);

let timer = null; // the current page's poll
let generation = 0; // bumped per page: a late answer of a page left behind is dropped

// ---- small helpers ---------------------------------------------------------------------------------

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key === "class") node.className = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value === true ? "" : value);
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

class ApiError extends Error {
  constructor(status, body) {
    const error = (body && body.error) || {};
    const detail = (error.details || []).map((d) => `${d.field}: ${d.reason}`).join("; ");
    super(`${status} ${error.code || (body && body.message) || ""} ${error.message || ""}${detail ? ` (${detail})` : ""}`.trim());
    this.status = status;
  }
}

async function api(path, query) {
  const params = new URLSearchParams();
  for (const [key, value] of Object.entries(query || {})) {
    if (value !== null && value !== undefined && value !== "" && value !== false) params.set(key, String(value));
  }
  const url = "/api" + path + (params.toString() ? "?" + params : "");
  const response = await fetch(url, { headers: { Accept: "application/json" } });
  const text = await response.text();
  let body = null;
  try { body = text ? JSON.parse(text) : null; } catch (_) { body = { message: text.slice(0, 200) }; }
  if (!response.ok) throw new ApiError(response.status, body);
  return body;
}

function showError(error) {
  const box = document.getElementById("error");
  if (!error) { box.hidden = true; return; }
  box.textContent = error.message || String(error);
  box.hidden = false;
}

function setLive(ok) {
  const live = document.getElementById("live");
  live.textContent = ok ? `live · ${new Date().toLocaleTimeString()}` : "live · API unreachable";
  live.classList.toggle("stale", !ok);
}

function when(iso) {
  if (!iso) return "";
  const date = new Date(iso);
  return date.toISOString().replace("T", " ").slice(0, 19);
}

function seconds(from, to) {
  if (!from) return null;
  return Math.max(0, ((to ? new Date(to) : new Date()) - new Date(from)) / 1000);
}

function duration(value) {
  if (value === null) return "–";
  if (value < 60) return `${value.toFixed(1)} s`;
  if (value < 3600) return `${Math.floor(value / 60)} min ${Math.round(value % 60)} s`;
  return `${Math.floor(value / 3600)} h ${Math.round((value % 3600) / 60)} min`;
}

function status(value) {
  return el("span", { class: `status ${value}` }, value);
}

function shortQueue(arn) {
  return arn ? arn.split("/").pop() : "";
}

function jobLink(job) {
  const tenant = job.tenant ? `?tenant=${encodeURIComponent(job.tenant)}` : "";
  return el("a", { href: `#/jobs/${encodeURIComponent(job.job_id)}${tenant}`, class: "mono" }, job.job_id);
}

function lineageLink(uri) {
  return el("a", { href: `#/lineage?uri=${encodeURIComponent(uri)}`, class: "mono", title: "which jobs read or wrote it" }, uri);
}

function inputOf(job) {
  return (job.inputs && job.inputs[0]) || Object.values(job.parameters || {}).find((v) => String(v).startsWith("s3://")) || "";
}

function route() {
  const hash = location.hash.replace(/^#/, "") || "/";
  const [path, query] = hash.split("?");
  return { path, query: new URLSearchParams(query || "") };
}

function poll(page, fn) {
  clearInterval(timer);
  timer = setInterval(async () => {
    if (page !== generation) return;
    try { await fn(); setLive(true); } catch (error) { setLive(false); showError(error); }
  }, POLL_MS);
}

// ---- jobs ------------------------------------------------------------------------------------------

const filters = { scope: "mine", tenant: "", job_type: "", status: "", input: "" };
let jobTypes = [];

function listQuery() {
  const query = { job_type: filters.job_type, status: filters.status, limit: 100 };
  if (filters.scope === "all") query.all_tenants = "true";
  if (filters.scope === "tenant" && filters.tenant) query.tenant = filters.tenant;
  return query;
}

function summaryQuery() {
  const query = {};
  if (filters.scope === "all") query.all_tenants = "true";
  if (filters.scope === "tenant" && filters.tenant) query.tenant = filters.tenant;
  return query;
}

function filterForm(onChange) {
  const option = (value, label, selected) => el("option", { value, selected: value === selected }, label);
  const scope = el("select", { id: "filter-scope", onchange: (e) => { filters.scope = e.target.value; onChange(); } },
    option("mine", "my jobs", filters.scope), option("tenant", "one tenant…", filters.scope),
    option("all", "all tenants (unfinished)", filters.scope));
  const tenant = el("input", { id: "filter-tenant", placeholder: "tenant", value: filters.tenant, size: 12,
    onchange: (e) => { filters.tenant = e.target.value.trim(); if (filters.tenant) { filters.scope = "tenant"; scope.value = "tenant"; } onChange(); } });
  const type = el("select", { id: "filter-type", onchange: (e) => { filters.job_type = e.target.value; onChange(); } },
    option("", "any type", filters.job_type), jobTypes.map((t) => option(t, t, filters.job_type)));
  const state = el("select", { id: "filter-status", onchange: (e) => { filters.status = e.target.value; onChange(); } },
    option("", "any status", filters.status), STATUSES.map((s) => option(s, s, filters.status)));
  const input = el("input", { id: "filter-input", type: "search", value: filters.input,
    placeholder: "input: s3://bucket/key (lineage) or part of a URI",
    onchange: (e) => { filters.input = e.target.value.trim(); onChange(); } });
  return el("form", { class: "filters", onsubmit: (e) => { e.preventDefault(); onChange(); } },
    el("label", {}, "whose", scope), el("label", {}, "tenant", tenant), el("label", {}, "type", type),
    el("label", {}, "status", state), el("label", {}, "search by input URI", input));
}

function summaryBox(summary) {
  const box = el("div", { class: "summary", id: "summary" });
  if (!summary) return box;
  const cell = (label, value, id) => el("div", { "data-count": id || label }, el("b", {}, value), el("span", {}, label));
  const counted = STATUSES.filter((s) => summary.by_status[s]);
  box.append(cell(`jobs since ${when(summary.since)}${summary.complete ? "" : " (newest 1,000)"}`, summary.jobs, "jobs"));
  for (const s of counted) box.append(cell(s, summary.by_status[s], s));
  const retries = Object.entries(summary.retries_by_failure_class);
  box.append(cell("retries", retries.length ? retries.map(([c, n]) => `${c} ${n}`).join(", ") : "none", "retries"));
  box.append(cell("Spot fallbacks", summary.spot_fallbacks, "spot_fallbacks"));
  return box;
}

function jobRow(job) {
  const attempts = job.attempts || [];
  const last = attempts[attempts.length - 1] || {};
  return el("tr", { "data-job-id": job.job_id, "data-updated": job.updated_at },
    el("td", {}, jobLink(job)), el("td", {}, job.tenant), el("td", {}, job.job_type), el("td", {}, status(job.status)),
    el("td", {}, last.number || 0), el("td", {}, last.capacity || ""), el("td", {}, when(job.created_at)),
    el("td", {}, when(job.updated_at)), el("td", { class: "mono" }, inputOf(job)));
}

async function jobsMatching() {
  // An s3:// URI is looked up in the lineage (which of the jobs read or wrote it); other text narrows
  // the listed jobs by their inputs and parameters.
  if (filters.input.startsWith("s3://")) {
    const uses = await api("/artifacts", { uri: filters.input, limit: 100 });
    const ids = [...new Set(uses.uses.map((u) => u.job_id))];
    const jobs = await Promise.all(ids.map((id) => api(`/jobs/${encodeURIComponent(id)}`).catch(() => null)));
    return { jobs: jobs.filter(Boolean), next_token: uses.next_token };
  }
  const page = await api("/jobs", listQuery());
  if (filters.input) {
    const needle = filters.input.toLowerCase();
    page.jobs = page.jobs.filter((j) => [...(j.inputs || []), ...Object.values(j.parameters || {})]
      .some((v) => String(v).toLowerCase().includes(needle)));
  }
  return page;
}

async function jobsPage(page) {
  if (!jobTypes.length) {
    const doc = await api("/openapi.json").catch(() => null);
    jobTypes = Object.keys((doc && doc.components && doc.components.schemas) || {})
      .filter((n) => n.startsWith("SubmitJob_")).map((n) => n.slice("SubmitJob_".length));
  }
  const view = document.getElementById("view");
  const tbody = el("tbody");
  const table = el("table", { id: "jobs" }, el("thead", {}, el("tr", {},
    ["job", "tenant", "type", "status", "attempts", "capacity", "created", "updated", "input"].map((h) => el("th", {}, h)))), tbody);
  const note = el("p", { class: "muted", id: "jobs-note" });
  let polls = 0;
  let asked = 0; // an answer to an earlier question (the filters since changed) is dropped

  async function refresh(full) {
    const mine = ++asked;
    const [listing, summary] = await Promise.all([
      jobsMatching(),
      full || polls % SUMMARY_EVERY === 0 ? api("/summary", summaryQuery()).catch(() => undefined) : Promise.resolve(undefined),
    ]);
    polls += 1;
    if (page !== generation || mine !== asked) return;
    if (summary !== undefined) document.getElementById("summary").replaceWith(summaryBox(summary));
    // Redraw only the rows that changed, in the listing's order.
    const existing = new Map([...tbody.children].map((row) => [row.dataset.jobId, row]));
    let previous = null;
    for (const job of listing.jobs) {
      let row = existing.get(job.job_id);
      if (!row || row.dataset.updated !== job.updated_at) {
        const fresh = jobRow(job);
        if (row) { row.replaceWith(fresh); fresh.classList.add("changed"); } else if (!full) fresh.classList.add("changed");
        row = fresh;
      }
      existing.delete(job.job_id);
      if (previous ? previous.nextSibling !== row : tbody.firstChild !== row) {
        if (previous) previous.after(row); else tbody.prepend(row);
      }
      previous = row;
    }
    for (const gone of existing.values()) gone.remove();
    note.textContent = listing.jobs.length ? (listing.next_token ? `newest ${listing.jobs.length} shown` : "") : "no jobs match";
  }

  const rebuild = async () => { tbody.replaceChildren(); polls = 0; showError(null); try { await refresh(true); } catch (e) { showError(e); } };
  view.replaceChildren(el("h1", {}, "Jobs"), summaryBox(null), filterForm(rebuild), table, note);
  await rebuild();
  poll(page, () => refresh(false));
}

// ---- one job ---------------------------------------------------------------------------------------

function decisionsOf(job, number) {
  // The decisions that followed attempt `number`: each names it ("attempt 2 ..."); a fall-back from
  // Spot is written just before its retry, at the same moment.
  const mine = job.history.filter((h) => h.reason.startsWith(`attempt ${number} `) && h.event !== "submitted");
  const moments = new Set(mine.filter((h) => h.event === "retried").map((h) => h.at));
  return job.history.filter((h) => mine.includes(h) || (h.event === "fell_back" && moments.has(h.at)));
}

function timeline(job) {
  const attempts = job.attempts || [];
  const start = new Date(job.created_at).getTime();
  const ends = attempts.map((a) => (a.stopped_at ? new Date(a.stopped_at).getTime() : Date.now()));
  const end = Math.max(start + 1000, ...ends, TERMINAL.has(job.status) ? new Date(job.updated_at).getTime() : Date.now());
  const at = (iso) => ((new Date(iso).getTime() - start) / (end - start)) * 100;
  const box = el("div", { id: "timeline" },
    el("p", { class: "legend muted" }, `from ${when(job.created_at)} to ${when(new Date(end).toISOString())}`,
      el("i", { class: "swatch", style: null }), "waiting", el("i"), "running"));
  const [waitSwatch, runSwatch] = box.querySelectorAll(".legend i");
  waitSwatch.style.background = "var(--wait)"; runSwatch.style.background = "var(--run)";
  if (!attempts.length) box.append(el("p", { class: "muted" }, "no attempt yet"));
  for (const attempt of attempts) {
    const waited = seconds(attempt.submitted_at, attempt.started_at || attempt.stopped_at);
    const ran = attempt.started_at ? seconds(attempt.started_at, attempt.stopped_at) : null;
    const track = el("div", { class: "track" });
    const waiting = el("div", { class: "waiting", title: `waiting ${duration(waited)}` });
    waiting.style.left = `${at(attempt.submitted_at)}%`;
    waiting.style.width = `${at(attempt.started_at || attempt.stopped_at || new Date().toISOString()) - at(attempt.submitted_at)}%`;
    track.append(waiting);
    if (attempt.started_at) {
      const running = el("div", { class: "running", title: `running ${duration(ran)}` });
      running.style.left = `${at(attempt.started_at)}%`;
      running.style.width = `${at(attempt.stopped_at || new Date().toISOString()) - at(attempt.started_at)}%`;
      track.append(running);
    }
    const fact = (label, value) => el("span", {}, `${label} `, el("b", {}, value === null || value === undefined || value === "" ? "–" : value));
    box.append(el("section", { class: "attempt", "data-attempt": attempt.number },
      el("h3", {}, `Attempt ${attempt.number}`, status(attempt.status),
        attempt.failure_class ? el("span", { class: "status FAILED failure-class" }, attempt.failure_class) : null),
      track,
      el("div", { class: "facts" },
        fact("waiting", duration(waited)), fact("running", duration(ran)), fact("queue", shortQueue(attempt.queue)),
        fact("capacity", attempt.capacity), fact("memory", `${attempt.memory_mib} MiB`), fact("vCPU", attempt.vcpus),
        fact("exit code", attempt.exit_code), fact("failure class", attempt.failure_class), fact("Batch job", attempt.batch_job_id)),
      attempt.status_reason ? el("div", { class: "muted" }, "reason: ", attempt.status_reason) : null,
      decisionsOf(job, attempt.number).map((h) => el("div", { class: `decision ${h.event}` },
        el("b", {}, h.event.replace("_", " ")), ` ${when(h.at)} — `, el("span", { class: "reason" }, h.reason)))));
  }
  return box;
}

function jobFields(job) {
  const row = (label, value) => [el("dt", {}, label), el("dd", {}, value)];
  return el("dl", { class: "fields" },
    row("status", status(job.status)), row("tenant", job.tenant), row("type", job.job_type),
    row("created", when(job.created_at)), row("updated", when(job.updated_at)),
    row("resources", `${job.vcpus} vCPU, ${job.memory_mib} MiB`),
    Object.entries(job.parameters).flatMap(([k, v]) => row(`parameters.${k}`, String(v).startsWith("s3://") ? lineageLink(v) : v)),
    row("output prefix", el("span", { class: "mono" }, job.output_prefix)));
}

function artifactsTable(job) {
  if (!job.artifacts.length) return el("p", { class: "muted" }, "no artifacts recorded");
  return el("table", { id: "artifacts" },
    el("thead", {}, el("tr", {}, ["role", "attempt", "object (lineage)", "size", "version"].map((h) => el("th", {}, h)))),
    el("tbody", {}, job.artifacts.map((a) => el("tr", {},
      el("td", {}, a.role), el("td", {}, a.attempt ?? "–"), el("td", {}, lineageLink(a.uri)),
      el("td", {}, a.size ?? "–"), el("td", { class: "mono" }, a.version_id || a.etag || "–")))),
    job.more_artifacts ? el("caption", { class: "muted" }, "more outputs: GET /jobs/{id}/artifacts") : null);
}

function logPane(jobId, tenant) {
  // GET /jobs/{id}/attempts/{n}/log: {"lines": [{"at", "message"}], "next_token"}; 404 until the
  // attempt has a log. A running attempt's log is read on from its next_token at each poll.
  const out = el("div", { id: "log" }, el("span", { class: "muted" }, "choose an attempt"));
  const tabs = el("div", { class: "tabs" });
  const where = el("p", { class: "muted mono", id: "log-where" });
  const state = { attempt: null, token: null, done: false };

  async function read(more) {
    if (state.attempt === null) return;
    const number = state.attempt;
    let body;
    try {
      // `tenant` as on GET /jobs/{id}: an operator reading another tenant's job names its tenant.
      const query = { tenant, next_token: more ? state.token : null };
      body = await api(`/jobs/${encodeURIComponent(jobId)}/attempts/${number}/log`, query);
    } catch (error) {
      if (more) return; // read on at the next poll
      out.replaceChildren(error.status === 404
        ? el("span", { class: "muted", id: "no-log" }, "no log yet")
        : el("span", { class: "muted" }, `log unavailable: ${error.message}`));
      return;
    }
    if (number !== state.attempt) return;
    if (!more) { out.replaceChildren(); where.textContent = body.where || ""; }
    for (const line of body.lines) out.append(el("div", {}, el("span", { class: "at" }, when(line.at)), line.message));
    if (!more && !body.lines.length) out.append(el("span", { class: "muted" }, "the log is empty so far"));
    state.token = body.next_token;
  }

  function choose(number) {
    state.attempt = number; state.token = null;
    for (const b of tabs.children) b.classList.toggle("on", Number(b.dataset.attempt) === number);
    read(false).catch(showError);
  }

  function update(job) {
    const numbers = job.attempts.map((a) => a.number);
    if (tabs.children.length !== numbers.length) {
      tabs.replaceChildren(...numbers.map((n) => el("button", { type: "button", "data-attempt": n, onclick: () => choose(n) }, `attempt ${n}`)));
      if (numbers.length) choose(state.attempt && numbers.includes(state.attempt) ? state.attempt : numbers[numbers.length - 1]);
    }
    const current = job.attempts.find((a) => a.number === state.attempt);
    state.done = !current || TERMINAL.has(current.status) || current.status === "SUCCEEDED";
  }

  async function follow() {
    if (state.attempt === null) return;
    if (state.token && !state.done) await read(true);
    else if (document.getElementById("no-log")) await read(false);
  }

  return { node: el("div", {}, tabs, where, out), update, follow };
}

async function jobPage(page, jobId, tenant) {
  const view = document.getElementById("view");
  const query = { tenant };
  const fetchJob = () => api(`/jobs/${encodeURIComponent(jobId)}`, query);
  let job;
  try {
    job = await fetchJob();
  } catch (error) {
    view.replaceChildren(el("h1", {}, `Job ${jobId}`), el("p", { class: "muted" }, error.message));
    return;
  }
  if (page !== generation) return;
  const log = logPane(jobId, tenant);
  const parts = { fields: jobFields(job), timeline: timeline(job), artifacts: artifactsTable(job) };
  const history = () => el("ol", { id: "history" }, job.history.map((h) => el("li", {}, el("b", {}, h.event), ` ${when(h.at)} — ${h.reason}`)));
  parts.history = history();
  view.replaceChildren(
    el("p", {}, el("a", { href: "#/" }, "← jobs")),
    el("h1", {}, "Job ", el("span", { class: "mono" }, job.job_id)),
    parts.fields, el("h2", {}, "Attempts"), parts.timeline, el("h2", {}, "Log"), log.node,
    el("h2", {}, "Artifacts"), parts.artifacts, el("h2", {}, "History"), parts.history);
  log.update(job);

  poll(page, async () => {
    const fresh = await fetchJob();
    if (page !== generation) return;
    const running = fresh.attempts.some((a) => !a.stopped_at) && !TERMINAL.has(fresh.status);
    if (fresh.updated_at !== job.updated_at || fresh.artifacts.length !== job.artifacts.length || running) {
      job = fresh; // only the parts that show the job again: the log pane keeps its place
      for (const [name, make] of Object.entries({ fields: jobFields, timeline, artifacts: artifactsTable, history })) {
        const next = make(job);
        parts[name].replaceWith(next);
        parts[name] = next;
      }
      log.update(job);
    }
    await log.follow();
  });
}

// ---- lineage ---------------------------------------------------------------------------------------

async function lineagePage(page, uri) {
  const view = document.getElementById("view");
  view.replaceChildren(el("p", {}, el("a", { href: "#/" }, "← jobs")), el("h1", {}, "Lineage"),
    el("p", { class: "mono" }, uri), el("p", { class: "muted" }, "loading…"));
  const body = await api("/artifacts", { uri, limit: 200 });
  if (page !== generation) return;
  const rows = body.uses.map((u) => el("tr", {}, el("td", {}, jobLink({ job_id: u.job_id })),
    el("td", {}, u.attempt === 0 ? "input (every attempt)" : `attempt ${u.attempt}`), el("td", {}, u.role),
    el("td", {}, u.size ?? "–"), el("td", { class: "mono" }, u.version_id || u.etag || "–")));
  view.lastChild.replaceWith(rows.length
    ? el("table", { id: "uses" }, el("thead", {}, el("tr", {}, ["job", "attempt", "role", "size", "version"].map((h) => el("th", {}, h)))), el("tbody", {}, rows))
    : el("p", { class: "muted" }, "none of the jobs you can see read or wrote this object"));
}

// ---- routing ---------------------------------------------------------------------------------------

async function show() {
  generation += 1;
  clearInterval(timer);
  showError(null);
  const page = generation;
  const { path, query } = route();
  try {
    if (path.startsWith("/jobs/")) await jobPage(page, decodeURIComponent(path.slice(6)), query.get("tenant"));
    else if (path === "/lineage") await lineagePage(page, query.get("uri") || "");
    else await jobsPage(page);
    setLive(true);
  } catch (error) {
    setLive(false);
    showError(error);
  }
}

window.addEventListener("hashchange", show);
window.addEventListener("DOMContentLoaded", async () => {
  try {
    const about = await (await fetch("/console.json")).json();
    document.getElementById("about").textContent = `${about.mode} · ${about.api}`;
  } catch (_) { /* the header is only a label */ }
  show();
});
