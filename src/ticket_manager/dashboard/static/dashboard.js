// Ticket Manager dashboard: status, mail flow and the ledger, from the REST API.
// Data from the server is only ever put into the page as text (never as HTML).
"use strict";

(() => {
  const API = document.documentElement.dataset.api;
  const KEY_STORAGE = "ticket-manager.api-key";
  const REFRESH_MS = 30000;
  const COLOURS = {
    created: "#2f855a", commented: "#3182ce", rejected: "#d69e2e",
    failed: "#c53030", pending: "#718096",
  };
  const RULE_COLOURS = ["#d69e2e", "#dd6b20", "#b7791f", "#975a16", "#744210", "#c05621"];
  const state = {
    period: "24h", cursor: null, timer: null, charts: {}, current: null, browse: null,
  };
  const $ = (id) => document.getElementById(id);

  // -- talking to the API ------------------------------------------------------------------

  class ApiError extends Error {
    constructor(status, problem) {
      super((problem && (problem.detail || problem.title)) || `HTTP ${status}`);
      this.status = status;
      this.problem = problem;
    }
  }

  async function api(path, options = {}) {
    const headers = { Accept: "application/json", Authorization: `Bearer ${apiKey()}` };
    if (options.body !== undefined) headers["Content-Type"] = "application/json";
    const response = await fetch(API + path, {
      method: options.method || "GET",
      headers,
      body: options.body === undefined ? undefined : JSON.stringify(options.body),
      cache: "no-store",
    });
    const body = await response.json().catch(() => null);
    if (!response.ok) throw new ApiError(response.status, body);
    return body;
  }

  const apiKey = () => sessionStorage.getItem(KEY_STORAGE) || "";

  // -- small DOM helpers -------------------------------------------------------------------

  function el(tag, attributes = {}, ...children) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attributes)) {
      if (value === undefined || value === null || value === false) continue;
      if (name === "class") node.className = value;
      else node.setAttribute(name, value === true ? "" : String(value));
    }
    for (const child of children.flat()) {
      if (child === null || child === undefined) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }

  function ago(seconds) {
    if (seconds === null || seconds === undefined) return "never";
    if (seconds < 120) return `${seconds} s ago`;
    if (seconds < 7200) return `${Math.floor(seconds / 60)} min ago`;
    if (seconds < 172800) return `${Math.floor(seconds / 3600)} h ago`;
    return `${Math.floor(seconds / 86400)} days ago`;
  }

  function when(iso) {
    if (!iso) return "";
    const date = new Date(iso);
    return date.toISOString().slice(0, 16).replace("T", " ") + " UTC";
  }

  const STATE_LABELS = {
    ticket_created: "ticket created", commented: "commented", rejected: "rejected",
    failed: "failed", pending: "pending", held: "held",
  };

  function badge(text, kind) {
    return el("span", { class: `badge ${kind || text}` }, STATE_LABELS[text] || text);
  }

  // -- sign in and out ---------------------------------------------------------------------

  function showSignIn(message) {
    clearInterval(state.timer);
    $("board").hidden = true;
    $("overall").hidden = true;
    $("sign-out").hidden = true;
    $("who").textContent = "";
    $("sign-in").hidden = false;
    $("sign-in-error").textContent = message || "";
    $("api-key").focus();
  }

  async function signIn(key) {
    sessionStorage.setItem(KEY_STORAGE, key);
    try {
      await refresh();
    } catch (error) {
      sessionStorage.removeItem(KEY_STORAGE);
      showSignIn(error instanceof ApiError && [401, 403].includes(error.status)
        ? `Refused: ${error.message}` : `Cannot reach the service: ${error.message}`);
      return;
    }
    $("sign-in").hidden = true;
    $("board").hidden = false;
    $("sign-out").hidden = false;
    $("who").textContent = `key ${key.split("_")[1] || "(token)"}`;
    await loadLedger(true);
    state.timer = setInterval(() => refresh().catch(() => {}), REFRESH_MS);
  }

  // -- status ------------------------------------------------------------------------------

  async function refresh() {
    const [status, flow] = await Promise.all([
      api("/status"), api(`/stats/flow?period=${state.period}`),
    ]);
    renderStatus(status);
    renderFlow(flow);
  }

  // A ticket key links to the ticket in Jira once /status has said where Jira is.
  function ticketLink(key) {
    if (!key) return "";
    if (!state.browse) return el("span", { "data-ticket": key }, key);
    return el("a", { href: state.browse + encodeURIComponent(key), target: "_blank",
      rel: "noopener noreferrer", "data-ticket": key }, key);
  }

  function renderStatus(status) {
    if (status.ticket_browse_url && state.browse !== status.ticket_browse_url) {
      state.browse = status.ticket_browse_url;
      document.querySelectorAll("span[data-ticket]").forEach((span) =>
        span.replaceWith(ticketLink(span.dataset.ticket)));
    }
    const overall = $("overall");
    overall.hidden = false;
    overall.className = `pill ${status.ok ? "ok" : "bad"}`;
    overall.textContent = status.ok
      ? "Mail is flowing" : `Needs attention (${status.problems.length})`;
    $("problems").hidden = status.ok;
    $("problem-list").replaceChildren(...status.problems.map((p) => el("li", {}, p)));

    const dependency = (title, d, extra) => el("div", { class: `card dep ${cssState(d.state)}` },
      el("h3", {}, title, " ", badge(d.state, cssState(d.state))),
      el("p", {}, d.detail || ""),
      d.account ? el("p", { class: "muted" }, `as ${d.account}`) : null,
      extra || null);
    const expiry = status.microsoft.expires_at
      ? el("p", { class: "muted" }, `token valid until ${when(status.microsoft.expires_at)}`)
      : null;
    $("dependencies").replaceChildren(
      dependency("Database", status.database),
      dependency("Microsoft 365", status.microsoft, expiry),
      dependency("Jira", status.jira),
    );

    const rows = status.mailboxes.map((m) => el("tr", { class: m.problems.length ? "bad" : "" },
      el("td", {}, m.address),
      el("td", { title: m.last_sync_at || "" }, ago(m.last_sync_age_seconds)),
      el("td", {}, m.subscription),
      el("td", { class: "num" }, m.backlog),
      el("td", { class: "num" }, m.failed),
      el("td", {}, m.problems.length ? badge("needs attention", "failing") : badge("ok", "ok"))));
    $("mailboxes").tBodies[0].replaceChildren(...rows);
  }

  const cssState = (s) => ({ ok: "ok", failing: "failing" }[s] || "unknown");

  // -- mail flow ---------------------------------------------------------------------------

  function label(bucket, seconds) {
    const date = new Date(bucket.start);
    const day = date.toISOString().slice(5, 10);
    return seconds >= 86400 ? day : `${day} ${date.toISOString().slice(11, 16)}`;
  }

  function renderFlow(flow) {
    const labels = flow.buckets.map((b) => label(b, flow.bucket_seconds));
    const datasets = ["created", "commented", "rejected", "failed", "pending"].map((name) => ({
      label: name, data: flow.buckets.map((b) => b[name]),
      backgroundColor: COLOURS[name], stack: "mail",
    }));
    if (state.charts.flow) {
      state.charts.flow.data.labels = labels;
      state.charts.flow.data.datasets.forEach((d, i) => { d.data = datasets[i].data; });
      state.charts.flow.update();
    } else {
      state.charts.flow = new Chart($("flow-chart"), {
        type: "bar",
        data: { labels, datasets },
        options: {
          responsive: true, maintainAspectRatio: false, animation: false,
          scales: { x: { stacked: true }, y: { stacked: true, beginAtZero: true,
            ticks: { precision: 0 } } },
          plugins: { legend: { position: "bottom" } },
        },
      });
    }
    const rules = Object.entries(flow.rejected_by_rule);
    const ruleData = {
      labels: rules.length ? rules.map(([r]) => r) : ["no rejections"],
      datasets: [{
        data: rules.length ? rules.map(([, n]) => n) : [1],
        backgroundColor: rules.length ? RULE_COLOURS : ["#e2e8f0"],
      }],
    };
    if (state.charts.rules) {
      state.charts.rules.data = ruleData;
      state.charts.rules.update();
    } else {
      state.charts.rules = new Chart($("rules-chart"), {
        type: "doughnut", data: ruleData,
        options: { responsive: true, maintainAspectRatio: false, animation: false,
          plugins: { legend: { position: "bottom" },
            title: { display: true, text: "Rejected, by rule" } } },
      });
    }
    const t = flow.totals;
    $("flow-totals").textContent =
      `${t.created} tickets, ${t.commented} comments, ${t.rejected} rejected, ` +
      `${t.failed} failed, ${t.held} held, ${t.pending} pending in the last ${flow.period}.`;
    window.ticketManagerCharts = state.charts;  // for tests and the curious
  }

  // -- the ledger --------------------------------------------------------------------------

  async function loadLedger(reset) {
    if (reset) state.cursor = null;
    const params = new URLSearchParams({ limit: "25" });
    const q = $("ledger-q").value.trim();
    const wanted = $("ledger-state").value;
    if (q) params.set("q", q);
    if (wanted) params.set("state", wanted);
    if (state.cursor) params.set("cursor", state.cursor);
    const page = await api(`/messages?${params}`);
    const rows = page.items.map((m) => {
      const row = el("tr", { "data-id": m.id, tabindex: 0 },
        el("td", {}, m.id),
        el("td", {}, when(m.received_at || m.created_at)),
        el("td", {}, m.sender || ""),
        el("td", {}, m.subject || ""),
        el("td", {}, badge(m.state)),
        el("td", {}, m.rule ? `${m.rule}: ${m.reason || ""}` : (m.last_error || "")),
        el("td", {}, ticketLink(m.ticket_key)));
      row.addEventListener("click", () => openDetail(m.id));
      row.addEventListener("keydown", (e) => { if (e.key === "Enter") openDetail(m.id); });
      return row;
    });
    const body = $("ledger").tBodies[0];
    if (reset) body.replaceChildren(...rows); else body.append(...rows);
    state.cursor = page.next_cursor;
    $("ledger-more").hidden = !page.next_cursor;
    $("ledger-count").textContent = `${body.rows.length} of ${page.total} messages.`;
  }

  async function openDetail(id) {
    const detail = await api(`/messages/${id}/detail`);
    const m = detail.message;
    state.current = m;
    $("detail-title").textContent = `Message #${m.id}: ${m.subject || "(no subject)"}`;
    const fields = [
      ["State", badge(m.state)], ["Mailbox", m.mailbox], ["From", m.sender || ""],
      ["Received", when(m.received_at)], ["Message-ID", m.internet_message_id],
      ["Rule", m.rule || "–"], ["Reason", m.reason || "–"], ["Ticket", m.ticket_key ? ticketLink(m.ticket_key) : "–"],
      ["Attempts", m.attempts], ["Last error", m.last_error || "–"],
      ["Next attempt", when(m.next_attempt_at) || "–"],
    ];
    $("detail-fields").replaceChildren(...fields.flatMap(([k, v]) => [el("dt", {}, k),
      el("dd", {}, v)]));
    $("detail-retry").hidden = m.state !== "failed" && m.state !== "held";
    $("detail-retry").textContent = m.state === "held" ? "Release" : "Retry";
    $("detail-force").hidden = m.state !== "rejected";
    $("detail-note").textContent = "";
    $("detail-jira").textContent = detail.jira
      ? `${detail.jira.kind} ${detail.jira.key}\n\n${detail.jira.text || ""}`
      : (detail.jira_error || "Nothing was sent to Jira.");
    const headers = detail.headers
      ? detail.headers.map((h) => el("tr", {}, el("th", {}, h.name), el("td", {}, h.value)))
      : [el("tr", {}, el("td", {}, detail.headers_error || "No headers."))];
    $("detail-headers").tBodies[0].replaceChildren(...headers);
    if (!$("detail").open) $("detail").showModal();
  }

  async function retry(force) {
    const m = state.current;
    $("detail-note").textContent = "…";
    try {
      const updated = await api(`/messages/${m.id}/retry`, { method: "POST", body: { force } });
      // Reload first: opening the detail clears its note.
      await Promise.all([openDetail(m.id), loadLedger(true), refresh()]);
      $("detail-note").textContent = `Queued: now ${STATE_LABELS[updated.state]}. ` +
        "The worker takes it on its next round.";
    } catch (error) {
      $("detail-note").textContent = error.status === 403
        ? "This key may not retry messages (it needs messages:write)." : error.message;
    }
  }

  // -- wiring ------------------------------------------------------------------------------

  document.addEventListener("DOMContentLoaded", () => {
    $("sign-in-form").addEventListener("submit", (event) => {
      event.preventDefault();
      signIn($("api-key").value.trim());
    });
    $("sign-out").addEventListener("click", () => {
      sessionStorage.removeItem(KEY_STORAGE);
      showSignIn("Signed out.");
    });
    for (const button of document.querySelectorAll("[data-period]")) {
      button.addEventListener("click", async () => {
        state.period = button.dataset.period;
        for (const other of document.querySelectorAll("[data-period]")) {
          other.setAttribute("aria-pressed", String(other === button));
        }
        await refresh();
      });
    }
    $("ledger-filter").addEventListener("submit", (event) => {
      event.preventDefault();
      loadLedger(true);
    });
    $("ledger-more").addEventListener("click", () => loadLedger(false));
    $("detail-retry").addEventListener("click", () => retry(false));
    $("detail-force").addEventListener("click", () => retry(true));
    if (apiKey()) signIn(apiKey()); else showSignIn();
  });
})();
