// The gitops-tasks application panel. Everything shown is built with DOM text nodes
// (`h()` below); nothing from the cluster or Git is ever parsed as HTML.

const POLL_MS = 3000;
const POLL_MAX_MS = 60000;
const SYNC_STATES = ["Synced", "OutOfSync", "Unknown"];
const HEALTH_STATES = ["Healthy", "Progressing", "Degraded", "Suspended", "Missing", "Unknown"];

const state = { role: "", csrf: "", poll: null, commits: new Map() };
const main = document.getElementById("main");

// ------------------------------------------------------------------------- helpers

function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith("on")) el.addEventListener(key.slice(2), value);
    else if (key === "dataset") Object.assign(el.dataset, value);
    else el.setAttribute(key, value === true ? "" : String(value));
  }
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

// replaceChildren with nested arrays flattened (and empty values dropped), as `h` takes them.
function fill(el, ...children) {
  el.replaceChildren(...children.flat(Infinity).filter((c) => c !== "" && c != null && c !== false)
    .map((c) => (c instanceof Node ? c : document.createTextNode(String(c)))));
}

function badge(kind, value) {
  const text = value || "Unknown";
  return h("span", { class: `badge ${kind}-${text.toLowerCase()}` }, text);
}

function short(sha) {
  return sha ? sha.slice(0, 7) : "-";
}

function when(iso) {
  if (!iso) return "-";
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? iso : d.toLocaleString();
}

function toast(message, bad) {
  const el = document.getElementById("toast");
  el.textContent = message;
  el.className = bad ? "toast bad" : "toast";
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => { el.textContent = ""; }, 8000);
}

class ApiError extends Error {
  constructor(status, message) { super(message); this.status = status; }
}

async function api(method, path, body) {
  const headers = { Accept: "application/json" };
  if (method !== "GET") {
    headers["Content-Type"] = "application/json";
    headers["X-CSRF-Token"] = state.csrf;
  }
  const resp = await fetch(path, {
    method, headers, credentials: "same-origin", cache: "no-store",
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  let data = null;
  try { data = await resp.json(); } catch (e) { data = null; }
  if (resp.status === 401 && !path.startsWith("/ui/")) {
    state.role = "";
    showLogin("Your session has ended: sign in again.");
    throw new ApiError(401, "signed out");
  }
  if (!resp.ok) throw new ApiError(resp.status, (data && data.error) || resp.statusText);
  return data;
}

// Polls `fn` every POLL_MS while the tab is visible; after a failure it waits twice as long
// (up to POLL_MAX_MS); while the tab is hidden it does not poll at all.
function poll(fn) {
  stopPolling();
  const job = { delay: POLL_MS, timer: null, stopped: false };
  const run = async () => {
    if (job.stopped) return;
    if (document.hidden) return; // resumed by visibilitychange
    try {
      await fn();
      job.delay = POLL_MS;
    } catch (e) {
      if (e.status === 401) { job.stopped = true; return; }
      job.delay = Math.min(job.delay * 2, POLL_MAX_MS);
    }
    if (!job.stopped) job.timer = setTimeout(run, job.delay);
  };
  job.run = run;
  state.poll = job;
  run();
}

function stopPolling() {
  if (state.poll) {
    state.poll.stopped = true;
    clearTimeout(state.poll.timer);
    state.poll = null;
  }
}

document.addEventListener("visibilitychange", () => {
  const job = state.poll;
  if (job && !document.hidden && !job.stopped) {
    clearTimeout(job.timer);
    job.run();
  }
});

function appPath(ns, name) {
  return `/api/v1/applications/${encodeURIComponent(ns)}/${encodeURIComponent(name)}`;
}

// One request per (repository, commit), whichever app asks: apps of one repository share it.
async function commitMessage(ns, name, repo, sha) {
  if (!sha) return "";
  const key = `${repo}@${sha}`;
  if (!state.commits.has(key)) {
    state.commits.set(key, api("GET", `${appPath(ns, name)}/revisions/${sha}/metadata`)
      .then((c) => c.message.split("\n")[0]).catch(() => ""));
  }
  return state.commits.get(key);
}

// A modal confirmation: resolves true when confirmed. Focus goes to the dialog and back.
function confirmDialog(title, body, confirmLabel) {
  return new Promise((resolve) => {
    const previous = document.activeElement;
    const dialog = h("dialog", { "aria-labelledby": "dlg-title" },
      h("h2", { id: "dlg-title" }, title), body,
      h("div", { class: "actions" },
        h("button", { type: "button", class: "secondary", onclick: () => dialog.close("no") },
          "Cancel"),
        h("button", { type: "button", class: "primary", onclick: () => dialog.close("yes") },
          confirmLabel)));
    dialog.addEventListener("close", () => {
      dialog.remove();
      if (previous) previous.focus();
      resolve(dialog.returnValue === "yes");
    });
    document.body.append(dialog);
    dialog.showModal();
  });
}

// ------------------------------------------------------------------------- sign in

function showLogin(message) {
  stopPolling();
  document.getElementById("who").textContent = "";
  document.getElementById("logout").hidden = true;
  const input = h("input", { id: "token", type: "password", autocomplete: "off",
                            required: true, spellcheck: "false" });
  const error = h("p", { class: "error", role: "alert" }, message || "");
  const form = h("form", { class: "login", onsubmit: async (ev) => {
    ev.preventDefault();
    error.textContent = "";
    try {
      const answer = await api("POST", "/ui/login", { token: input.value });
      input.value = "";
      signedIn(answer);
    } catch (e) {
      error.textContent = e.status === 401 ? "That token is not known." : e.message;
    }
  } },
  h("h1", {}, "Sign in"),
  h("p", {}, "Paste an API token (read-only or admin). It is checked once and not kept by " +
    "the browser: the panel gets a session instead."),
  h("label", { for: "token" }, "API token"), input,
  h("button", { type: "submit", class: "primary" }, "Sign in"), error);
  fill(main, form);
  input.focus();
}

function signedIn(session) {
  state.role = session.role;
  state.csrf = session.csrf;
  document.getElementById("who").textContent =
    session.role === "admin" ? "admin" : "read-only";
  document.getElementById("logout").hidden = false;
  route();
}

document.getElementById("logout").addEventListener("click", async () => {
  try { await api("POST", "/ui/logout"); } catch (e) { /* signed out either way */ }
  state.role = "";
  showLogin("Signed out.");
});

// ------------------------------------------------------------------------- the list

const filters = { sync: "", health: "", project: "", namespace: "", text: "" };

function select(id, label, options, key, onchange) {
  const el = h("select", { id, onchange: (ev) => { filters[key] = ev.target.value; onchange(); } },
    h("option", { value: "" }, "All"),
    options.map((o) => h("option", { value: o, selected: filters[key] === o }, o)));
  return h("div", { class: "field" }, h("label", { for: id }, label), el);
}

function matches(row) {
  const text = filters.text.toLowerCase();
  return (!filters.sync || row.sync === filters.sync) &&
    (!filters.health || row.health === filters.health) &&
    (!filters.project || row.project === filters.project) &&
    (!filters.namespace || row.dest_namespace === filters.namespace) &&
    (!text || [row.name, row.repo, row.path, row.project, row.dest_namespace]
      .some((v) => (v || "").toLowerCase().includes(text)));
}

function showList() {
  let rows = [];
  const count = h("p", { class: "count", "aria-live": "polite" });
  const tbody = h("tbody");
  const filterBox = h("div", { class: "filters", role: "search" });
  const draw = () => {
    const shown = rows.filter(matches);
    count.textContent = `${shown.length} of ${rows.length} applications`;
    fill(tbody, ...shown.map((r) => {
      const message = h("span", { class: "commit" });
      commitMessage(r.namespace, r.name, r.repo, r.revision_sha).then((m) => { message.textContent = m; });
      return h("tr", { dataset: { app: r.name } },
        h("td", {}, h("a", { href: `#/app/${encodeURIComponent(r.namespace)}/` +
                                   `${encodeURIComponent(r.name)}` }, r.name)),
        h("td", {}, r.project),
        h("td", {}, r.dest_namespace),
        h("td", {}, badge("sync", r.sync)),
        h("td", {}, badge("health", r.health)),
        h("td", {}, h("code", {}, short(r.revision_sha)), " ", message),
        h("td", {}, when(r.last_sync), r.operation ? [" ", badge("op", r.operation)] : ""));
    }));
  };
  const drawFilters = () => {
    const uniq = (k) => [...new Set(rows.map((r) => r[k]).filter(Boolean))].sort();
    const text = h("input", { id: "f-text", type: "search", value: filters.text,
                              oninput: (ev) => { filters.text = ev.target.value; draw(); } });
    fill(filterBox,
      select("f-sync", "Sync", SYNC_STATES, "sync", draw),
      select("f-health", "Health", HEALTH_STATES, "health", draw),
      select("f-project", "Project", uniq("project"), "project", draw),
      select("f-namespace", "Namespace", uniq("dest_namespace"), "namespace", draw),
      h("div", { class: "field" }, h("label", { for: "f-text" }, "Search"), text));
  };
  fill(main,
    h("h1", {}, "Applications"), filterBox, count,
    h("table", { class: "apps" },
      h("thead", {}, h("tr", {}, ["Name", "Project", "Namespace", "Sync", "Health",
                                  "Revision", "Last sync"].map((c) => h("th", { scope: "col" }, c)))),
      tbody));
  let known = "";
  poll(async () => {
    const answer = await api("GET", "/api/v1/applications");
    rows = answer.items;
    const choices = JSON.stringify(rows.map((r) => [r.project, r.dest_namespace]));
    if (choices !== known) { known = choices; drawFilters(); }
    draw();
  });
}

// ------------------------------------------------------------------------- one app

function operationBox(obj) {
  const status = obj.status || {};
  const op = status.operationState;
  const pending = obj.operation;
  if (!op && !pending) return h("p", {}, "No operation yet.");
  const parts = [];
  if (pending && (!op || !op.phase || ["Succeeded", "Failed", "Error"].includes(op.phase))) {
    parts.push(h("p", {}, "Sync requested, waiting for a worker."));
  }
  if (op) {
    const results = ((op.syncResult || {}).resources) || [];
    const done = results.filter((r) => ["Applied", "Unchanged", "Pruned", "Synced",
      "PruneSkipped", "Skipped", "WouldApply", "WouldPrune"].includes(r.status) ||
      r.hookPhase === "Succeeded").length;
    const hooks = results.filter((r) => r.hookType);
    const running = hooks.filter((r) => ["Running", "Pending"].includes(r.hookPhase)).length;
    const wave = op.currentWave;
    const bar = h("progress", { max: Math.max(results.length, 1), value: done,
                                "aria-label": "resources done" });
    parts.push(h("div", { class: "operation", dataset: { phase: op.phase || "" } },
      h("p", {}, badge("op", op.phase), " ",
        wave ? `wave ${wave.wave} of ${wave.phase}, ` : "",
        `${done}/${results.length} resources done`,
        hooks.length ? `, hooks: ${hooks.length} (${running} running)` : ""),
      bar,
      h("p", { class: "message" }, op.message || ""),
      results.length ? h("table", { class: "results" },
        h("thead", {}, h("tr", {}, ["Kind", "Namespace", "Name", "Phase", "Wave", "Result",
                                    "Message"].map((c) => h("th", { scope: "col" }, c)))),
        h("tbody", {}, results.map((r) => h("tr", {},
          h("td", {}, r.kind), h("td", {}, r.namespace || ""), h("td", {}, r.name),
          h("td", {}, r.syncPhase || ""), h("td", {}, r.wave ?? ""),
          h("td", {}, r.hookType ? `${r.hookType} ${r.hookPhase || ""}` : r.status || ""),
          h("td", {}, r.message || ""))))) : ""));
  }
  return h("div", {}, parts);
}

function treeList(nodes) {
  return h("ul", { class: "tree" }, nodes.map((n) => h("li", {},
    h("span", { class: "node" },
      h("span", { class: "kind" }, n.kind), " ",
      h("span", { class: "name" }, n.namespace ? `${n.namespace}/${n.name}` : n.name), " ",
      n.status ? badge("sync", n.status) : "", " ",
      n.health ? badge("health", n.health) : "",
      n.requiresPruning ? h("span", { class: "prune" }, " requires pruning") : "",
      n.message ? h("span", { class: "message" }, ` ${n.message}`) : ""),
    n.children && n.children.length ? treeList(n.children) : "",
    n.more ? h("p", { class: "more" }, `and ${n.more} more`) : "")));
}

async function act(label, fn) {
  try {
    await fn();
    toast(`${label}: requested.`);
  } catch (e) {
    if (e.status !== 401) toast(`${label} failed: ${e.message}`, true);
  }
}

function syncDialog(ns, name, obj) {
  const resources = (obj.status || {}).resources || [];
  const prune = h("input", { type: "checkbox", id: "sync-prune" });
  const dry = h("input", { type: "checkbox", id: "sync-dry" });
  const force = h("input", { type: "checkbox", id: "sync-force" });
  const boxes = resources.map((r, i) => ({
    r, box: h("input", { type: "checkbox", id: `sync-r${i}` }) }));
  const body = h("div", {},
    h("p", {}, `Apply Git to the cluster for ${name}.`),
    h("div", { class: "check" }, prune, h("label", { for: "sync-prune" },
      "Prune: delete what is no longer in Git")),
    h("div", { class: "check" }, dry, h("label", { for: "sync-dry" },
      "Dry run: change nothing, show what would change")),
    h("div", { class: "check" }, force, h("label", { for: "sync-force" },
      "Force: take over fields another manager (kubectl, a controller) changed")),
    boxes.length ? h("fieldset", {}, h("legend", {}, "Only these resources (none: all)"),
      boxes.map(({ r, box }, i) => h("div", { class: "check" }, box,
        h("label", { for: `sync-r${i}` },
          `${r.kind} ${r.namespace ? `${r.namespace}/` : ""}${r.name} (${r.status || "?"})`))))
      : "");
  confirmDialog(`Sync ${name}`, body, "Sync").then((yes) => {
    if (!yes) return;
    const subset = boxes.filter(({ box }) => box.checked).map(({ r }) => ({
      group: r.group || "", kind: r.kind, namespace: r.namespace || "", name: r.name }));
    act("Sync", () => api("POST", `${appPath(ns, name)}/sync`, {
      prune: prune.checked, dryRun: dry.checked, force: force.checked, resources: subset }));
  });
}

function showApp(ns, name) {
  const title = h("h1", {}, name);
  const summary = h("div", { class: "summary" });
  const actions = h("div", { class: "actions", role: "toolbar", "aria-label": "Actions" });
  const operation = h("section", { "aria-labelledby": "op-h" });
  const conditions = h("section", { "aria-labelledby": "cond-h" });
  const resources = h("section", { "aria-labelledby": "res-h" });
  const history = h("section", { "aria-labelledby": "hist-h" });
  fill(main,
    h("nav", { class: "crumbs", "aria-label": "Breadcrumb" },
      h("a", { href: "#/" }, "Applications"), " / ", name),
    title, summary, actions,
    h("h2", { id: "op-h" }, "Operation"), operation,
    h("h2", { id: "cond-h" }, "Conditions"), conditions,
    h("h2", { id: "res-h" }, "Resources"), resources,
    h("h2", { id: "hist-h" }, "History"), history);
  let current = null;
  const admin = state.role === "admin";
  const drawActions = () => {
    const running = current && current.status && current.status.operationState &&
      ["Running", "Terminating"].includes(current.status.operationState.phase);
    fill(actions,
      h("a", { class: "button", href: `#/app/${encodeURIComponent(ns)}/` +
                                      `${encodeURIComponent(name)}/diff` }, "Diff"),
      admin ? [
        h("button", { type: "button", onclick: () => act("Refresh",
          () => api("POST", `${appPath(ns, name)}/refresh`, { hard: false })) }, "Refresh"),
        h("button", { type: "button", onclick: () => act("Hard refresh",
          () => api("POST", `${appPath(ns, name)}/refresh`, { hard: true })) },
          "Hard refresh"),
        h("button", { type: "button", class: "primary",
                      onclick: () => syncDialog(ns, name, current || {}) }, "Sync"),
        running ? h("button", { type: "button", class: "danger", onclick: () =>
          confirmDialog(`Terminate the operation of ${name}?`,
            h("p", {}, "Waves not applied yet are not applied."), "Terminate").then((yes) => {
            if (yes) act("Terminate", () => api("DELETE", `${appPath(ns, name)}/operation`));
          }) }, "Terminate") : "",
      ] : "");
  };
  const drawHistory = (obj) => {
    const entries = ((obj.status || {}).history || []).slice().reverse();
    if (!entries.length) { fill(history, h("p", {}, "Nothing deployed yet.")); return; }
    fill(history, h("table", { class: "history" },
      h("thead", {}, h("tr", {}, ["ID", "Revision", "Message", "Deployed", "By", ""]
        .map((c) => h("th", { scope: "col" }, c)))),
      h("tbody", {}, entries.map((e) => {
        const message = h("span", { class: "commit" });
        commitMessage(ns, name, ((obj.spec || {}).source || {}).repoURL, e.revision).then((m) => { message.textContent = m; });
        const who = (e.initiatedBy || {}).automated ? "automated"
          : ((e.initiatedBy || {}).username || "");
        return h("tr", {},
          h("td", {}, e.id), h("td", {}, h("code", {}, short(e.revision))),
          h("td", {}, message), h("td", {}, when(e.deployedAt)), h("td", {}, who),
          h("td", {}, admin ? h("button", { type: "button", onclick: () =>
            confirmDialog(`Roll ${name} back to ${short(e.revision)}?`,
              h("p", {}, `History entry ${e.id} is synced again, without a change in Git.`),
              "Roll back").then((yes) => {
              if (yes) {
                act("Rollback", () => api("POST", `${appPath(ns, name)}/rollback`,
                  { id: e.id, force: !!(((obj.spec || {}).syncPolicy || {}).automated) }));
              }
            }) }, "Roll back") : ""));
      }))));
  };
  let lastTree = 0;
  let lastRecorded = "";
  poll(async () => {
    const obj = await api("GET", appPath(ns, name));
    current = obj;
    const status = obj.status || {};
    const sync = status.sync || {};
    const health = status.health || {};
    const source = (obj.spec || {}).source || {};
    const message = h("span", { class: "commit" });
    commitMessage(ns, name, source.repoURL, sync.revision).then((m) => { message.textContent = m; });
    fill(summary,
      h("p", {}, badge("sync", sync.status), " ", badge("health", health.status), " ",
        health.message ? h("span", { class: "message" }, health.message) : ""),
      h("p", {}, "Source: ", h("code", {}, source.repoURL || ""), " ",
        h("code", {}, source.path || source.chart || "."), " @ ",
        h("code", {}, source.targetRevision || "HEAD")),
      h("p", {}, "Revision: ", h("code", {}, short(sync.revision)), " ", message));
    drawActions();
    fill(operation, operationBox(obj));
    const conds = status.conditions || [];
    fill(conditions, conds.length ? h("ul", { class: "conditions" }, conds.map((c) =>
      h("li", {}, h("strong", {}, c.type), `: ${c.message}`))) : h("p", {}, "None."));
    drawHistory(obj);
    // The tree reads the cluster: every few polls, or at once when the recorded resources
    // changed (a sync or refresh just wrote them).
    const recorded = JSON.stringify(status.resources || []);
    if (Date.now() - lastTree > 9000 || recorded !== lastRecorded) {
      lastTree = Date.now();
      lastRecorded = recorded;
      try {
        const tree = await api("GET", `${appPath(ns, name)}/resource-tree`);
        fill(resources, tree.nodes.length ? treeList(tree.nodes)
          : h("p", {}, "No resources recorded yet."));
      } catch (e) {
        if (e.status === 401) throw e;
        fill(resources, h("p", { class: "error" }, `The tree: ${e.message}`));
      }
    }
  });
}

// ------------------------------------------------------------------------- the diff

function diffLines(text) {
  return text.split("\n").map((line) => {
    const cls = line.startsWith("+") && !line.startsWith("+++") ? "add"
      : line.startsWith("-") && !line.startsWith("---") ? "del"
        : line.startsWith("@@") ? "hunk" : "";
    return h("span", { class: `line ${cls}` }, line, "\n");
  });
}

function sideBySide(text) {
  const left = [];
  const right = [];
  for (const line of text.split("\n")) {
    if (line.startsWith("---") || line.startsWith("+++")) continue;
    if (line.startsWith("@@")) {
      while (left.length < right.length) left.push(["", ""]);
      while (right.length < left.length) right.push(["", ""]);
      left.push(["hunk", line]); right.push(["hunk", line]);
    } else if (line.startsWith("-")) left.push(["del", line.slice(1)]);
    else if (line.startsWith("+")) right.push(["add", line.slice(1)]);
    else {
      while (left.length < right.length) left.push(["", ""]);
      while (right.length < left.length) right.push(["", ""]);
      left.push(["", line.slice(1)]); right.push(["", line.slice(1)]);
    }
  }
  while (left.length < right.length) left.push(["", ""]);
  while (right.length < left.length) right.push(["", ""]);
  return h("table", { class: "sbs" },
    h("thead", {}, h("tr", {}, h("th", { scope: "col" }, "Live"),
                     h("th", { scope: "col" }, "Desired (Git)"))),
    h("tbody", {}, left.map(([lc, lt], i) => h("tr", {},
      h("td", { class: lc }, lt), h("td", { class: right[i][0] }, right[i][1])))));
}

async function showDiff(ns, name) {
  stopPolling();
  const view = { mode: "unified" };
  const body = h("div", { "aria-busy": "true" }, h("p", {}, "Asking a worker for the diff…"));
  const toggle = h("button", { type: "button", "aria-pressed": "false", onclick: () => {
    view.mode = view.mode === "unified" ? "side" : "unified";
    toggle.setAttribute("aria-pressed", String(view.mode === "side"));
    toggle.textContent = view.mode === "side" ? "Unified" : "Side by side";
    draw();
  } }, "Side by side");
  fill(main,
    h("nav", { class: "crumbs", "aria-label": "Breadcrumb" },
      h("a", { href: "#/" }, "Applications"), " / ",
      h("a", { href: `#/app/${encodeURIComponent(ns)}/${encodeURIComponent(name)}` }, name),
      " / diff"),
    h("h1", {}, `Diff of ${name}`), toggle, body);
  let answer = null;
  const draw = () => {
    if (!answer) return;
    const changed = answer.resources.filter((r) => r.status !== "Synced");
    body.removeAttribute("aria-busy");
    fill(body,
      h("p", {}, badge("sync", answer.sync), ` at ${short(answer.revision)}: `,
        `${changed.length} of ${answer.resources.length} resources differ`),
      Object.entries(answer.errors || {}).map(([k, v]) => h("p", { class: "error" }, `${k}: ${v}`)),
      changed.map((r) => h("section", { class: "diff", dataset: { kind: r.kind, name: r.name } },
        h("h2", {}, `${r.kind} ${r.namespace ? `${r.namespace}/` : ""}${r.name} `,
          badge("sync", r.status)),
        r.diff ? (view.mode === "side" ? sideBySide(r.diff)
          : h("pre", { class: "udiff" }, diffLines(r.diff))) : h("p", {}, "No text diff."))));
  };
  try {
    answer = await api("GET", `${appPath(ns, name)}/diff`);
    draw();
  } catch (e) {
    if (e.status !== 401) fill(body, h("p", { class: "error" }, e.message));
  }
}

// ------------------------------------------------------------------------- routing

function route() {
  if (!state.role) { showLogin(); return; }
  const parts = location.hash.replace(/^#\/?/, "").split("/").map(decodeURIComponent);
  if (parts[0] === "app" && parts.length >= 3) {
    if (parts[3] === "diff") showDiff(parts[1], parts[2]);
    else showApp(parts[1], parts[2]);
  } else {
    showList();
  }
  main.focus({ preventScroll: true });
}

window.addEventListener("hashchange", route);

(async () => {
  try {
    signedIn(await api("GET", "/ui/session"));
  } catch (e) {
    showLogin(e.status === 401 ? "" : e.message);
  }
})();
