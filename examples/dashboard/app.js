// Compliance dashboard: a dependency-free single page app.
// Every piece of data from the server is inserted as text (textContent via `h`), never as
// HTML, so package names and titles coming from FOSSA cannot inject markup.
"use strict";

const PAGE = 50;
const state = {
  route: null,
  ws: null,
  wsBackoff: 500,
  lastSeq: {},          // channel -> last seq seen, for catch-up after a reconnect
  channels: new Set(),  // channels the current view follows
  syncing: new Set(),   // component ids with a sync in flight
  lastUpdated: {},      // component id -> Date of the last sync.completed seen
  onEvent: null,        // the current view's event handler
  onGap: null,          // the current view's refetch handler
};

// ---------- DOM helpers ----------
function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else if (k === "class") el.className = v;
    else el.setAttribute(k, v === true ? "" : String(v));
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}
const main = () => document.getElementById("main");
function render(...nodes) { main().replaceChildren(...nodes.filter((n) => n !== null && n !== undefined && n !== false)); }
function fill(el, ...nodes) { el.replaceChildren(...nodes.filter((n) => n !== null && n !== undefined && n !== false)); }

function toast(text, kind) {
  const t = h("div", { class: "toast toast-" + (kind || "ok"), role: "status" }, text);
  document.getElementById("toasts").append(t);
  setTimeout(() => t.remove(), 6000);
}

function ago(date) {
  if (!date) return "never";
  const d = typeof date === "string" ? new Date(date) : date;
  const s = Math.max(0, Math.round((Date.now() - d.getTime()) / 1000));
  if (s < 10) return "just now";
  if (s < 60) return s + " s ago";
  if (s < 3600) return Math.round(s / 60) + " min ago";
  if (s < 86400) return Math.round(s / 3600) + " h ago";
  return d.toLocaleString();
}
function badge(status) { return h("span", { class: "badge badge-" + (status || "UNKNOWN") }, status || "UNKNOWN"); }
function sev(s) { return h("span", { class: "sev sev-" + (s || "unknown") }, s || "unknown"); }

// ---------- API ----------
async function api(path, opts) {
  const res = await fetch(path, Object.assign({ credentials: "same-origin", headers: { "Accept": "application/json" } }, opts || {}));
  if (res.status === 401) { showLogin(); throw new Error("unauthorized"); }
  if (!res.ok) {
    let msg = res.status + " " + res.statusText;
    try { const b = await res.json(); if (b && b.error) msg = b.error; } catch (_) { /* not JSON */ }
    throw new Error(msg);
  }
  return res.status === 204 ? null : res.json();
}
function qs(params) {
  const p = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== "" && v !== null && v !== undefined) p.set(k, v);
  const s = p.toString();
  return s ? "?" + s : "";
}

// ---------- login ----------
async function login(token) {
  const res = await fetch("/api/login", {
    method: "POST", credentials: "same-origin",
    headers: { "Content-Type": "application/json" }, body: JSON.stringify({ token }),
  });
  // Kept for this tab only, so that after a server restart (sessions live in the server's
  // memory) the page can sign in again by itself instead of dropping to the login form.
  if (res.ok) sessionStorage.setItem("compliance-token", token);
  else sessionStorage.removeItem("compliance-token");
  return res.ok;
}
async function ensureSession() {
  let probe;
  try { probe = await fetch("/api/components?limit=1", { credentials: "same-origin" }); }
  catch (_) { return false; }  // server still down
  if (probe.status !== 401) return true;
  const token = sessionStorage.getItem("compliance-token");
  if (token && await login(token)) return true;
  showLogin();
  return false;
}
function showLogin() {
  const tpl = document.getElementById("login-tpl").content.cloneNode(true);
  render(tpl);
  const form = document.getElementById("login-form");
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    const ok = await login(document.getElementById("token").value.trim());
    if (ok) { connect(); route(); } else document.getElementById("login-error").textContent = "That token was not accepted.";
  });
  document.getElementById("token").focus();
}

// ---------- live channel ----------
function connect() {
  if (state.ws && state.ws.readyState <= 1) return;
  const url = (location.protocol === "https:" ? "wss://" : "ws://") + location.host + "/ws";
  const ws = new WebSocket(url);
  state.ws = ws;
  ws.onopen = () => {
    state.wsBackoff = 500;
    setConn(true);
    for (const ch of state.channels) subscribe(ch);
  };
  ws.onmessage = (m) => {
    let msg;
    try { msg = JSON.parse(m.data); } catch (_) { return; }
    if (msg.type === "event") {
      if (typeof msg.seq === "number") state.lastSeq[msg.channel] = msg.seq;
      handleEvent(msg);
    } else if (msg.type === "subscribed") {
      if (typeof msg.seq === "number" && state.lastSeq[msg.channel] === undefined) state.lastSeq[msg.channel] = msg.seq;
    } else if (msg.type === "gap") {
      // The server could not replay everything we missed: refetch what is on screen.
      if (msg.channel && typeof msg.seq === "number") state.lastSeq[msg.channel] = msg.seq;
      if (state.onGap) state.onGap();
    }
  };
  ws.onclose = () => {
    setConn(false);
    state.ws = null;
    setTimeout(reconnect, state.wsBackoff);
    state.wsBackoff = Math.min(state.wsBackoff * 2, 5000);
  };
}
async function reconnect() {
  // A closed socket may mean the server restarted and forgot our session: check first.
  if (await ensureSession()) connect();
  else if (!document.getElementById("login-form")) setTimeout(reconnect, state.wsBackoff);
}
function setConn(up) {
  const el = document.getElementById("conn");
  el.textContent = up ? "live" : "reconnecting…";
  el.className = "conn " + (up ? "conn-up" : "conn-down");
}
function subscribe(channel) {
  if (!state.ws || state.ws.readyState !== 1) return;
  const msg = { type: "subscribe", channel };
  if (state.lastSeq[channel] !== undefined) msg.last_seq = state.lastSeq[channel];
  state.ws.send(JSON.stringify(msg));
}
function follow(channels) {
  for (const ch of state.channels) {
    if (!channels.includes(ch) && state.ws && state.ws.readyState === 1) state.ws.send(JSON.stringify({ type: "unsubscribe", channel: ch }));
  }
  state.channels = new Set(channels);
  for (const ch of channels) subscribe(ch);
}
function handleEvent(msg) {
  const d = msg.data || {};
  const id = d.component_id;
  if (msg.event === "sync.started") {
    if (id) state.syncing.add(id);
  } else if (msg.event === "sync.completed") {
    if (id) { state.syncing.delete(id); state.lastUpdated[id] = new Date(); }
    // The list channel and the component channel both carry the event: toast once.
    if (msg.channel === "components" || !state.channels.has("components")) {
      const extra = [];
      if (d.new_issues) extra.push(d.new_issues + " new");
      if (d.resolved_issues) extra.push(d.resolved_issues + " resolved");
      toast("Scan complete: " + d.issues_count + " issues found" + (extra.length ? " (" + extra.join(", ") + ")" : ""), "ok");
    }
  } else if (msg.event === "sync.failed") {
    if (id) state.syncing.delete(id);
    if (msg.channel === "components" || !state.channels.has("components")) toast("Sync failed: " + (d.error || "unknown error"), "err");
  }
  if (state.onEvent) state.onEvent(msg);
}

// ---------- router ----------
function route() {
  const hash = location.hash || "#/";
  state.onEvent = null; state.onGap = null;
  let m;
  if ((m = hash.match(/^#\/components\/([0-9a-fA-F-]{36})/))) return componentPage(m[1]);
  if (hash.startsWith("#/events")) return eventsPage();
  return listPage();
}
window.addEventListener("hashchange", route);

// ---------- component list ----------
async function listPage() {
  const view = { offset: 0, status: "", search: "" };
  const tbody = h("tbody");
  const info = h("span", { class: "muted small" });
  const prev = h("button", { class: "secondary", onclick: () => { view.offset = Math.max(0, view.offset - PAGE); load(); } }, "Previous");
  const next = h("button", { class: "secondary", onclick: () => { view.offset += PAGE; load(); } }, "Next");
  const search = h("input", { type: "search", placeholder: "Search by name", "aria-label": "Search components by name" });
  const status = h("select", { "aria-label": "Filter by status" },
    h("option", { value: "" }, "All statuses"), h("option", { value: "PASSING" }, "Passing"),
    h("option", { value: "FAILING" }, "Failing"), h("option", { value: "UNKNOWN" }, "Never synced"));
  let timer = null;
  search.addEventListener("input", () => { clearTimeout(timer); timer = setTimeout(() => { view.search = search.value; view.offset = 0; load(); }, 250); });
  status.addEventListener("change", () => { view.status = status.value; view.offset = 0; load(); });

  render(
    h("div", { class: "header-row" }, h("h1", {}, "Components")),
    h("div", { class: "toolbar" }, search, status),
    h("section", { class: "card" },
      h("table", { "aria-label": "Components" },
        h("thead", {}, h("tr", {}, h("th", {}, "Component"), h("th", {}, "Status"), h("th", { class: "num" }, "Issues"),
          h("th", { class: "num" }, "Critical/High"), h("th", { class: "num" }, "Dependencies"), h("th", {}, "Last sync"))),
        tbody),
      h("div", { class: "pager" }, info, prev, next)));

  async function load() {
    let page;
    try {
      page = await api("/api/components" + qs({ offset: view.offset, limit: PAGE, status: view.status, search: view.search }));
    } catch (e) { if (e.message !== "unauthorized") tbody.replaceChildren(h("tr", {}, h("td", { colspan: 6, class: "error" }, e.message))); return; }
    const items = page.items || [];
    tbody.replaceChildren(...(items.length ? items.map(row) : [h("tr", {}, h("td", { colspan: 6, class: "empty" }, "No components match."))]));
    const total = page.total || 0;
    info.textContent = total ? (view.offset + 1) + "–" + (view.offset + items.length) + " of " + total : "";
    prev.disabled = view.offset === 0;
    next.disabled = view.offset + items.length >= total;
  }
  function row(c) {
    const issues = c.issues || {};
    const last = state.lastUpdated[c.id] || c.last_synced_at;
    return h("tr", { "data-component": c.id },
      h("td", {}, h("a", { href: "#/components/" + c.id }, c.name), h("div", { class: "muted small mono" }, c.repository_url)),
      h("td", {}, badge(c.compliance_status), state.syncing.has(c.id) ? h("span", { class: "syncing" }, "Syncing…") : null),
      h("td", { class: "num" }, issues.total ?? 0),
      h("td", { class: "num" }, (issues.critical ?? 0) + " / " + (issues.high ?? 0)),
      h("td", { class: "num" }, c.dependency_count ?? 0),
      h("td", { class: "small" }, last ? ago(last) : h("span", { class: "muted" }, "never")));
  }
  async function refreshRow(id) {
    const tr = tbody.querySelector('tr[data-component="' + CSS.escape(id) + '"]');
    if (!tr) return;
    try {
      const view = await api("/api/components/" + encodeURIComponent(id) + "/compliance");
      const c = Object.assign({}, view.component, { issues: view.issues, dependency_count: (view.dependencies || {}).total });
      tr.replaceWith(row(c));
    } catch (_) { /* the next full load shows it */ }
  }
  state.onEvent = (msg) => {
    const id = msg.data && msg.data.component_id;
    if (!id || msg.channel !== "components") return;
    if (msg.event === "sync.started") {
      const tr = tbody.querySelector('tr[data-component="' + CSS.escape(id) + '"]');
      if (tr) refreshRow(id);
    } else refreshRow(id);
  };
  state.onGap = load;
  follow(["components"]);
  await load();
}

// ---------- component page ----------
async function componentPage(id) {
  const channel = "component:" + id;
  follow(["components", channel]);
  const head = h("div", { class: "header-row" });
  const stats = h("div", { class: "grid" });
  const tabsEl = h("div", { class: "tabs", role: "tablist" });
  const panel = h("section", { class: "card", role: "tabpanel" });
  render(h("p", {}, h("a", { href: "#/" }, "← All components")), head, stats, h("div", { style: "height:1rem" }), tabsEl, panel);

  const tabs = [["issues", "Issues"], ["dependencies", "Dependencies"], ["licenses", "Licenses"], ["history", "Sync history"], ["events", "Webhook log"]];
  let current = "issues";
  let summary = null;
  for (const [key, label] of tabs) {
    tabsEl.append(h("button", { role: "tab", id: "tab-" + key, "aria-selected": key === current ? "true" : "false",
      onclick: () => { current = key; for (const b of tabsEl.children) b.setAttribute("aria-selected", b.id === "tab-" + key ? "true" : "false"); showTab(); } }, label));
  }

  async function loadSummary() {
    try { summary = await api("/api/components/" + encodeURIComponent(id) + "/compliance"); }
    catch (e) { if (e.message !== "unauthorized") render(h("p", { class: "error" }, e.message)); return false; }
    const c = summary.component;
    const updated = state.lastUpdated[id];
    fill(head, h("h1", {}, c.name), badge(c.compliance_status),
      state.syncing.has(id) ? h("span", { class: "syncing", id: "sync-indicator" }, "Syncing…") : null,
      h("span", { class: "muted small" }, updated ? "Updated " + ago(updated) : "Last sync " + ago(c.last_synced_at)),
      h("span", { style: "flex:1" }),
      h("button", { onclick: triggerSync }, "Sync now"));
    const i = summary.issues || {}, d = summary.dependencies || {};
    const scan = summary.latest_scan;
    stats.replaceChildren(
      stat(i.total ?? 0, "Active issues"), stat((i.critical ?? 0) + " / " + (i.high ?? 0), "Critical / high"),
      stat(i.licensing ?? 0, "Licensing"), stat(i.vulnerability ?? 0, "Vulnerabilities"), stat(i.quality ?? 0, "Quality"),
      stat(d.total ?? 0, "Dependencies (" + (d.direct ?? 0) + " direct)"),
      stat(scan ? scan.revision.slice(0, 12) : "—", "Revision" + (scan && scan.branch ? " on " + scan.branch : "")));
    return true;
  }
  function stat(v, l) { return h("div", { class: "stat" }, h("div", { class: "v" }, v), h("div", { class: "l" }, l)); }
  async function triggerSync() {
    try { await api("/api/components/" + encodeURIComponent(id) + "/sync", { method: "POST" }); toast("Sync queued", "ok"); }
    catch (e) { if (e.message !== "unauthorized") toast("Could not queue a sync: " + e.message, "err"); }
  }

  function showTab() {
    if (current === "issues") return issuesTab();
    if (current === "dependencies") return depsTab();
    if (current === "licenses") return licensesTab();
    if (current === "history") return historyTab();
    return eventsTab();
  }

  function pagedTable(columns, fetchPage, rowFn, filters) {
    const st = { offset: 0 };
    const tbody = h("tbody");
    const info = h("span", { class: "muted small" });
    const prev = h("button", { class: "secondary", onclick: () => { st.offset = Math.max(0, st.offset - PAGE); load(); } }, "Previous");
    const next = h("button", { class: "secondary", onclick: () => { st.offset += PAGE; load(); } }, "Next");
    async function load() {
      let page;
      try { page = await fetchPage(st.offset); } catch (e) { if (e.message !== "unauthorized") tbody.replaceChildren(h("tr", {}, h("td", { colspan: columns.length, class: "error" }, e.message))); return; }
      const items = page.items || [];
      tbody.replaceChildren(...(items.length ? items.map(rowFn) : [h("tr", {}, h("td", { colspan: columns.length, class: "empty" }, "Nothing here."))]));
      const total = page.total || 0;
      info.textContent = total ? (st.offset + 1) + "–" + (st.offset + items.length) + " of " + total : "";
      prev.disabled = st.offset === 0;
      next.disabled = st.offset + items.length >= total;
    }
    fill(panel, filters ? h("div", { class: "toolbar" }, ...filters) : null,
      h("table", {}, h("thead", {}, h("tr", {}, ...columns.map((c) => h("th", { class: c.num ? "num" : null }, c.label)))), tbody),
      h("div", { class: "pager" }, info, prev, next));
    return { load, reset: () => { st.offset = 0; return load(); } };
  }

  function issuesTab() {
    const f = { category: "", severity: "", status: "ACTIVE", search: "" };
    const cat = select("Category", [["", "All categories"], ["licensing", "Licensing"], ["vulnerability", "Vulnerability"], ["quality", "Quality"]], (v) => { f.category = v; t.reset(); });
    const sv = select("Severity", [["", "All severities"], ["critical", "Critical"], ["high", "High"], ["medium", "Medium"], ["low", "Low"]], (v) => { f.severity = v; t.reset(); });
    const stt = select("Status", [["ACTIVE", "Active"], ["RESOLVED", "Resolved"], ["", "All"]], (v) => { f.status = v; t.reset(); });
    const search = searchBox("Search issues", (v) => { f.search = v; t.reset(); });
    const t = pagedTable(
      [{ label: "Severity" }, { label: "Type" }, { label: "Title" }, { label: "Package" }, { label: "License / CVE" }, { label: "Status" }],
      (offset) => api("/api/components/" + encodeURIComponent(id) + "/issues" + qs({ offset, limit: PAGE, category: f.category, severity: f.severity, status: f.status, search: f.search })),
      (i) => h("tr", {}, h("td", {}, sev(i.severity)), h("td", { class: "small" }, (i.category || (i.key && i.key.category) || "") + " · " + i.issue_type),
        h("td", {}, i.title), h("td", { class: "mono" }, i.package_name + (i.package_version ? "@" + i.package_version : "")),
        h("td", { class: "small" }, i.cve || i.license || "—"), h("td", { class: "small" }, i.status === "RESOLVED" ? "resolved " + ago(i.resolved_at) : (i.direct ? "direct" : "transitive"))),
      [cat, sv, stt, search]);
    t.load();
    refreshTab = t.load;
  }
  function depsTab() {
    const f = { direct: "", search: "", license: "" };
    const dd = select("Depth", [["", "Direct and transitive"], ["true", "Direct only"], ["false", "Transitive only"]], (v) => { f.direct = v; t.reset(); });
    const search = searchBox("Search dependencies", (v) => { f.search = v; t.reset(); });
    const lic = searchBox("License (exact id)", (v) => { f.license = v; t.reset(); });
    const t = pagedTable(
      [{ label: "Package" }, { label: "Version" }, { label: "Manager" }, { label: "Depth" }, { label: "License" }],
      (offset) => api("/api/components/" + encodeURIComponent(id) + "/dependencies" + qs({ offset, limit: PAGE, direct: f.direct, search: f.search, license: f.license })),
      (d) => h("tr", {}, h("td", { class: "mono" }, d.name), h("td", { class: "mono" }, d.version || "—"), h("td", {}, d.package_manager),
        h("td", {}, d.is_direct ? "direct" : "transitive (" + d.depth + ")"), h("td", { class: "small" }, d.license_expression || h("span", { class: "muted" }, "none found"))),
      [dd, search, lic]);
    t.load();
    refreshTab = t.load;
  }
  function licensesTab() {
    const list = (summary && summary.licenses) || [];
    const max = Math.max(1, ...list.map((l) => l.count));
    panel.replaceChildren(list.length ? h("table", {},
      h("thead", {}, h("tr", {}, h("th", {}, "License"), h("th", { class: "num" }, "Dependencies"), h("th", {}, ""))),
      h("tbody", {}, ...list.map((l) => h("tr", {}, h("td", { class: "mono" }, l.license || "(none found)"), h("td", { class: "num" }, l.count),
        h("td", { style: "width:40%" }, h("div", { class: "bar", style: "width:" + Math.round(100 * l.count / max) + "%" })))))) : h("p", { class: "empty" }, "No dependencies synced yet."));
    refreshTab = licensesTab;
  }
  function historyTab() {
    const t = pagedTable(
      [{ label: "Queued" }, { label: "Trigger" }, { label: "Status" }, { label: "Revision" }, { label: "Issues", num: true }, { label: "New / resolved", num: true }, { label: "Note" }],
      (offset) => api("/api/components/" + encodeURIComponent(id) + "/sync-jobs" + qs({ offset, limit: PAGE })),
      (j) => h("tr", {}, h("td", { class: "small" }, new Date(j.queued_at).toLocaleString()), h("td", {}, j.trigger), h("td", {}, j.status),
        h("td", { class: "mono" }, (j.revision || "latest").slice(0, 12)), h("td", { class: "num" }, j.issues_synced ?? "—"),
        h("td", { class: "num" }, j.new_issues === null || j.new_issues === undefined ? "—" : j.new_issues + " / " + j.resolved_issues),
        h("td", { class: "small muted" }, j.error_message || (j.superseded_by ? "covered by " + j.superseded_by.slice(0, 8) : ""))));
    t.load();
    refreshTab = t.load;
  }
  function eventsTab() {
    const t = pagedTable(eventColumns(), (offset) => api("/api/webhook-events" + qs({ component_id: id, offset, limit: PAGE })), eventRow);
    t.load();
    refreshTab = t.load;
  }
  let refreshTab = () => {};

  state.onEvent = (msg) => {
    if (msg.channel !== channel) return;
    if (msg.event === "sync.started") loadSummary();
    else { loadSummary(); refreshTab(); }
  };
  state.onGap = () => { loadSummary(); refreshTab(); };
  if (await loadSummary()) showTab();
}

function select(label, options, onChange) {
  const s = h("select", { "aria-label": label }, ...options.map(([v, t]) => h("option", { value: v }, t)));
  s.addEventListener("change", () => onChange(s.value));
  return s;
}
function searchBox(label, onChange) {
  const i = h("input", { type: "search", placeholder: label, "aria-label": label });
  let timer = null;
  i.addEventListener("input", () => { clearTimeout(timer); timer = setTimeout(() => onChange(i.value), 250); });
  return i;
}
function eventColumns() { return [{ label: "Received" }, { label: "Status" }, { label: "HTTP", num: true }, { label: "Repository" }, { label: "Revision" }, { label: "Source" }, { label: "Note" }]; }
function eventRow(e) {
  return h("tr", {}, h("td", { class: "small" }, new Date(e.received_at).toLocaleString()), h("td", {}, e.processing_status),
    h("td", { class: "num" }, e.http_status), h("td", { class: "small mono" }, e.repository_url || "—"),
    h("td", { class: "mono" }, (e.revision || "—").slice(0, 12)), h("td", { class: "small" }, [e.source_system, e.source_ip].filter(Boolean).join(" · ") || "—"),
    h("td", { class: "small muted" }, e.error_message || e.rejection || ""));
}

// ---------- webhook log ----------
async function eventsPage() {
  follow(["components"]);
  const f = { status: "" };
  const tbody = h("tbody");
  const st = { offset: 0 };
  const info = h("span", { class: "muted small" });
  const prev = h("button", { class: "secondary", onclick: () => { st.offset = Math.max(0, st.offset - PAGE); load(); } }, "Previous");
  const next = h("button", { class: "secondary", onclick: () => { st.offset += PAGE; load(); } }, "Next");
  const status = select("Status", [["", "All"], ["QUEUED", "Queued"], ["PROCESSED", "Processed"], ["FAILED", "Failed"]], (v) => { f.status = v; st.offset = 0; load(); });
  render(h("h1", {}, "Webhook log"), h("div", { class: "toolbar" }, status),
    h("section", { class: "card" }, h("table", {}, h("thead", {}, h("tr", {}, ...eventColumns().map((c) => h("th", { class: c.num ? "num" : null }, c.label)))), tbody),
      h("div", { class: "pager" }, info, prev, next)));
  async function load() {
    let page;
    try { page = await api("/api/webhook-events" + qs({ status: f.status, offset: st.offset, limit: PAGE })); }
    catch (e) { if (e.message !== "unauthorized") tbody.replaceChildren(h("tr", {}, h("td", { colspan: 7, class: "error" }, e.message))); return; }
    const items = page.items || [];
    tbody.replaceChildren(...(items.length ? items.map(eventRow) : [h("tr", {}, h("td", { colspan: 7, class: "empty" }, "No webhook requests logged."))]));
    const total = page.total || 0;
    info.textContent = total ? (st.offset + 1) + "–" + (st.offset + items.length) + " of " + total : "";
    prev.disabled = st.offset === 0;
    next.disabled = st.offset + items.length >= total;
  }
  state.onEvent = () => load();
  state.onGap = load;
  await load();
}

// ---------- start ----------
(async function start() {
  // A login link carries the token in the fragment (never sent to the server in a URL).
  const m = location.hash.match(/[#&]token=([^&]+)/);
  if (m) {
    await login(decodeURIComponent(m[1]));
    history.replaceState(null, "", location.pathname + "#/");
  }
  const probe = await fetch("/api/components?limit=1", { credentials: "same-origin" });
  if (probe.status === 401) { showLogin(); return; }
  connect();
  route();
  // Keep relative times fresh.
  setInterval(() => { for (const el of document.querySelectorAll("[data-relative]")) el.textContent = ago(el.dataset.relative); }, 15000);
})();
