// The operator dashboard: reads the JSON endpoints with the key from the URL fragment or the
// form and draws everything with hand-written SVG. No dependencies, no build step.
// The key is kept in this tab's sessionStorage and sent only in the Authorization header.
"use strict";
(function () {
  const SVG = "http://www.w3.org/2000/svg";
  const STORAGE = "multiagent.dashboard.key";
  const $ = (id) => document.getElementById(id);
  const state = { key: null, mode: null, tenants: [], timer: null };

  // ---------- formatting ----------
  function money(v) {
    if (v === null || v === undefined || isNaN(v)) return "–";
    const a = Math.abs(v);
    if (a === 0) return "$0.00";
    if (a < 0.01) return "$" + v.toPrecision(2);
    return "$" + v.toLocaleString("en-US", { minimumFractionDigits: 2, maximumFractionDigits: 2 });
  }
  function ms(v) {
    if (v === null || v === undefined) return "–";
    if (v >= 1000) return (v / 1000).toFixed(v >= 10000 ? 1 : 2) + " s";
    return Math.round(v) + " ms";
  }
  function pct(v) {
    if (v === null || v === undefined) return "–";
    if (v === 0) return "0%";
    const p = v * 100;
    return (p < 1 ? p.toFixed(2) : p < 10 ? p.toFixed(1) : Math.round(p)) + "%";
  }
  function int(v) { return (v || 0).toLocaleString("en-US"); }
  function when(iso) {
    const d = new Date(iso);
    if (isNaN(d)) return iso;
    const s = (Date.now() - d.getTime()) / 1000;
    if (s < 60) return Math.max(0, Math.round(s)) + " s ago";
    if (s < 3600) return Math.round(s / 60) + " min ago";
    if (s < 86400) return Math.round(s / 3600) + " h ago";
    return d.toISOString().slice(0, 16).replace("T", " ");
  }
  function until(iso) {
    const s = (new Date(iso).getTime() - Date.now()) / 1000;
    if (isNaN(s)) return "";
    if (s < 3600) return "resets in " + Math.max(1, Math.round(s / 60)) + " min";
    if (s < 2 * 86400) return "resets in " + Math.round(s / 3600) + " h";
    return "resets in " + Math.round(s / 86400) + " days";
  }
  function windowLabel(name) {
    if (name === "day") return "Today";
    if (name === "month") return "This month";
    const m = /^team:(.+):day$/.exec(name);
    return m ? m[1] + " today" : name;
  }

  // ---------- DOM helpers (text only: data never becomes HTML) ----------
  function h(tag, attrs, ...children) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === undefined || v === null || v === false) continue;
      if (k === "class") e.className = v; else if (k === "text") e.textContent = v; else e.setAttribute(k, v);
    }
    for (const c of children) if (c !== null && c !== undefined) e.append(c instanceof Node ? c : String(c));
    return e;
  }
  function s(tag, attrs, ...children) {
    const e = document.createElementNS(SVG, tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === undefined || v === null) continue;
      if (k === "text") e.textContent = v; else e.setAttribute(k, v);
    }
    for (const c of children) if (c) e.append(c);
    return e;
  }
  function title(text) { return s("title", { text }); }
  function empty(node, message) { node.replaceChildren(h("p", { class: "empty", text: message })); }
  function setKpi(id, value, raw, sub, cls) {
    const e = $(id);
    e.textContent = value;
    e.dataset.value = raw === undefined || raw === null ? "" : String(raw);
    e.className = "value" + (cls ? " " + cls : "");
    $(id + "-sub").textContent = sub || "";
  }
  function table(node, head, rows) {
    const thead = h("thead", {}, h("tr", {}, ...head.map(([label, cls]) => h("th", { class: cls, text: label }))));
    node.replaceChildren(thead, h("tbody", {}, ...rows));
  }

  // ---------- charts ----------
  function budgetBar(w, threshold) {
    const width = 400, height = 22;
    const limit = w.limit_usd || 0;
    const used = limit > 0 ? Math.min(1, w.spent_usd / limit) : 0;
    const held = limit > 0 ? Math.min(1 - used, (w.reserved_usd || 0) / limit) : 0;
    const cls = used >= 1 ? "fill bad" : used >= threshold ? "fill warn" : "fill";
    const tx = Math.round(width * threshold);
    return s("svg", { viewBox: `0 0 ${width} ${height + 4}`, role: "img",
        "aria-label": `${windowLabel(w.window)}: ${money(w.spent_usd)} of ${money(limit)} used` },
      s("rect", { class: "track", x: 0, y: 2, width, height, rx: 4 }),
      s("rect", { class: cls, x: 0, y: 2, width: Math.max(used > 0 ? 2 : 0, width * used), height, rx: 4 }),
      held > 0 ? s("rect", { class: "reserved", x: width * used, y: 2, width: width * held, height }) : null,
      s("line", { class: "threshold", x1: tx, x2: tx, y1: 0, y2: height + 4 },
        title(`alert at ${pct(threshold)} (${money(w.alert_at_usd)})`)));
  }
  function budgetWindows(node, windows, threshold) {
    node.replaceChildren(...windows.map((w) => {
      const used = w.limit_usd > 0 ? w.spent_usd / w.limit_usd : 0;
      const tag = used >= 1 ? h("span", { class: "badge bad", text: "exhausted" })
        : used >= threshold ? h("span", { class: "badge warn", text: "past alert" }) : null;
      return h("div", { class: "window", "data-window": w.window, "data-remaining": w.remaining_usd },
        h("div", { class: "head" }, h("span", {}, windowLabel(w.window), " ", tag),
          h("b", { "data-testid": "remaining-" + w.window }, money(w.remaining_usd) + " left")),
        budgetBar(w, threshold),
        h("div", { class: "foot" },
          h("span", {}, `${money(w.spent_usd)} spent of ${money(w.limit_usd)}` +
            (w.unsettled_usd ? ` (${money(w.unsettled_usd)} unsettled)` : "") +
            (w.reserved_usd ? ` · ${money(w.reserved_usd)} held` : "") + ` · alert at ${pct(threshold)}`),
          h("span", {}, until(w.reset_at))));
    }));
  }
  function niceMax(v) {
    if (v <= 0) return 1;
    const p = Math.pow(10, Math.floor(Math.log10(v)));
    for (const m of [1, 2, 2.5, 5, 10]) if (v <= m * p) return m * p;
    return 10 * p;
  }
  // charts are drawn at the pixel width of their card, so text keeps its size on any screen
  function widthOf(node, fallback) { return Math.max(260, Math.floor(node.clientWidth || fallback)); }
  const drawn = new Map();  // node id -> () => redraw, for window resizes
  function remember(node, draw) { drawn.set(node.id, draw); draw(); }
  let resizeTimer = null;
  window.addEventListener("resize", () => {
    clearTimeout(resizeTimer);
    resizeTimer = setTimeout(() => drawn.forEach((draw) => draw()), 150);
  });
  function spendPerDay(node, byDay) {
    const now = new Date();
    const y = now.getUTCFullYear(), mo = now.getUTCMonth(), today = now.getUTCDate();
    const values = new Map(byDay.map((r) => [r.day, r]));
    const days = [];
    for (let d = 1; d <= today; d++) {
      const key = `${y}-${String(mo + 1).padStart(2, "0")}-${String(d).padStart(2, "0")}`;
      days.push({ day: key, d, row: values.get(key) });
    }
    for (const r of byDay) if (!days.some((x) => x.day === r.day)) days.push({ day: r.day, d: +r.day.slice(8), row: r });
    if (!byDay.length) return empty(node, "No spend recorded this month.");
    const W = widthOf(node, 460), H = 200, L = 56, B = 22, T = 10;
    const max = niceMax(Math.max(...days.map((x) => (x.row ? x.row.cost_usd : 0))));
    const bw = (W - L) / days.length;
    const svg = s("svg", { viewBox: `0 0 ${W} ${H}`, role: "img", "aria-label": "Spend per day this month" });
    for (const f of [0, 0.5, 1]) {
      const yy = T + (H - B - T) * (1 - f);
      svg.append(s("line", { class: f === 0 ? "axis" : "grid-line", x1: L, x2: W, y1: yy, y2: yy }),
        s("text", { x: L - 6, y: yy + 4, "text-anchor": "end", text: money(max * f) }));
    }
    days.forEach((x, i) => {
      const v = x.row ? x.row.cost_usd : 0;
      const bh = (H - B - T) * (v / max);
      const g = s("g", { "data-day": x.day, "data-cost": v });
      g.append(s("rect", { class: "bar", x: L + i * bw + bw * 0.15, y: H - B - bh, width: Math.max(1, bw * 0.7),
        height: Math.max(v > 0 ? 1 : 0, bh) }, title(`${x.day}: ${money(v)} · ${int(x.row ? x.row.calls : 0)} model calls`)));
      const step = days.length > 16 ? 5 : days.length > 8 ? 2 : 1;
      if (x.d === 1 || x.d % step === 0 || i === days.length - 1) {
        g.append(s("text", { x: L + i * bw + bw / 2, y: H - 6, "text-anchor": "middle", text: String(x.d) }));
      }
      svg.append(g);
    });
    node.replaceChildren(svg);
  }
  function hbars(node, rows, opts) {
    if (!rows.length) return empty(node, opts.empty);
    const W = widthOf(node, 460), rowH = 26, L = opts.labelWidth || 130, R = 96;
    const H = rows.length * rowH + 4;
    const max = Math.max(...rows.map((r) => r.value)) || 1;
    const svg = s("svg", { viewBox: `0 0 ${W} ${H}`, role: "img", "aria-label": opts.label });
    rows.forEach((r, i) => {
      const y = i * rowH + 2;
      const bw = (W - L - R) * (r.value / max);
      svg.append(s("g", { "data-key": r.key, "data-value": r.value },
        s("text", { class: "big", x: L - 8, y: y + 15, "text-anchor": "end", text: r.key }),
        s("rect", { class: "track", x: L, y: y + 3, width: W - L - R, height: rowH - 8, rx: 3 }),
        s("rect", { class: opts.cls || "bar", x: L, y: y + 3, width: Math.max(r.value > 0 ? 2 : 0, bw), height: rowH - 8, rx: 3 },
          title(r.tip || r.text)),
        s("text", { class: "val", x: W - R + 6, y: y + 15, text: r.text })));
    });
    node.replaceChildren(svg);
  }
  function rangeChart(row, max) {
    const W = 220, H = 18, pad = 6;
    const x = (v) => pad + (W - 2 * pad) * (v / max);
    return s("svg", { viewBox: `0 0 ${W} ${H}`, class: "range-chart", role: "img",
        "aria-label": `p50 ${ms(row.p50_ms)}, p95 ${ms(row.p95_ms)}, p99 ${ms(row.p99_ms)}` },
      s("line", { class: "range", x1: x(row.p50_ms), x2: x(row.p99_ms), y1: H / 2, y2: H / 2 }),
      s("circle", { class: "m99", cx: x(row.p99_ms), cy: H / 2, r: 5 }),
      s("circle", { class: "m95", cx: x(row.p95_ms), cy: H / 2, r: 5 }),
      s("circle", { class: "m50", cx: x(row.p50_ms), cy: H / 2, r: 5 }));
  }

  // ---------- panels ----------
  function renderUsage(u) {
    const day = u.windows.find((w) => w.window === "day"), month = u.windows.find((w) => w.window === "month");
    const th = u.limits.alert_threshold;
    const cls = (w) => (!w || !w.limit_usd ? "" : w.spent_usd >= w.limit_usd ? "bad" : w.spent_usd >= th * w.limit_usd ? "warn" : "");
    setKpi("kpi-day", money(u.spent_usd.day), u.spent_usd.day, day ? `of ${money(day.limit_usd)} · ${money(day.remaining_usd)} left` : "", cls(day));
    setKpi("kpi-month", money(u.spent_usd.month), u.spent_usd.month, month ? `of ${money(month.limit_usd)} · ${money(month.remaining_usd)} left` : "", cls(month));
    budgetWindows($("budget"), u.windows, th);
    renderSpend(u);
  }
  // MULTIAGENT_MODEL_PROVIDER=simulated bills its ledger rows as "simulated:<model>": say so by the money
  function markSimulated(byModel) {
    const simulated = byModel.some((r) => String(r.model || "").startsWith("simulated:"));
    let badge = $("simulated-badge");
    if (!badge) {
      badge = h("span", { id: "simulated-badge", class: "badge warn", "data-testid": "simulated-badge",
        text: "simulated costs", title: "Spend from the simulated model: offline answers billed at the team's "
          + "model price, counted against real budgets; no model provider charged anything." });
      $("scope").after(badge);
    }
    badge.hidden = !simulated;
  }
  function renderSpend(u) {
    markSimulated(u.by_model || []);
    remember($("spend-day"), () => spendPerDay($("spend-day"), u.by_day || []));
    const teams = (u.by_team || []).slice().sort((a, b) => b.cost_usd - a.cost_usd);
    remember($("spend-team"), () => hbars($("spend-team"), teams.map((t) => ({ key: t.team, value: t.cost_usd,
      text: money(t.cost_usd),
      tip: `${t.team}: ${money(t.cost_usd)} · ${int(t.calls)} model calls · ${int(t.input_tokens)} in / ${int(t.output_tokens)} out tokens` })),
      { label: "Spend per team this month", empty: "No spend recorded this month." }));
  }
  function renderStats(st, hours) {
    const label = hours >= 24 ? `last ${hours / 24 === 1 ? "24 hours" : Math.round(hours / 24) + " days"}` : `last ${hours} hour${hours > 1 ? "s" : ""}`;
    $("latency-window").textContent = label;
    $("errors-window").textContent = label;
    setKpi("kpi-calls", int(st.operations), st.operations, label);
    setKpi("kpi-errors", pct(st.error_rate), st.error_rate, `${int(st.errors)} failed`,
      st.error_rate >= 0.05 ? "bad" : st.error_rate > 0 ? "warn" : "");
    setKpi("kpi-p95", ms(st.latency_ms.p95), st.latency_ms.p95,
      st.latency_ms.p50 === null ? "" : `p50 ${ms(st.latency_ms.p50)} · p99 ${ms(st.latency_ms.p99)}`);
    const teams = st.by_team.slice().sort((a, b) => b.calls - a.calls);
    if (!teams.length) {
      $("latency").replaceChildren(h("caption", { class: "empty", text: "No operations in this window." }));
    } else {
      const max = Math.max(...teams.map((t) => t.p99_ms || 0)) || 1;
      table($("latency"), [["Team"], ["Calls", "num hide-narrow"], ["p50", "num"], ["p95", "num"], ["p99", "num"],
        ["Errors", "num hide-narrow"],
        [`p50 · p95 · p99 on a 0 – ${ms(max)} scale`, "hide-narrow scale"]],
        teams.map((t) => h("tr", { "data-team": t.team },
          h("td", { text: t.team }), h("td", { class: "num hide-narrow", text: int(t.calls) }),
          h("td", { class: "num", "data-testid": `p50-${t.team}`, "data-value": t.p50_ms, text: ms(t.p50_ms) }),
          h("td", { class: "num", "data-testid": `p95-${t.team}`, "data-value": t.p95_ms, text: ms(t.p95_ms) }),
          h("td", { class: "num", "data-testid": `p99-${t.team}`, "data-value": t.p99_ms, text: ms(t.p99_ms) }),
          h("td", { class: "num hide-narrow", text: t.errors ? `${int(t.errors)} (${pct(t.error_rate)})` : "0" }),
          h("td", { class: "hide-narrow" }, rangeChart(t, max)))));
    }
    remember($("errors"), () => hbars($("errors"), st.errors_by_type.map((e) => ({ key: e.type, value: e.count,
      text: `${int(e.count)} · ${pct(e.rate)}`, tip: `${e.type}: ${int(e.count)} of ${int(st.operations)} calls` })),
      { label: "Errors by problem type", empty: st.operations ? "No errors in this window." : "No operations in this window.",
        cls: "bar err", labelWidth: 150 }));
  }
  function detailText(e) {
    const d = e.detail || {};
    const parts = [];
    if (d.tool) parts.push("tool " + d.tool + (d.ok === false ? " failed" : ""));
    if (d.cost_usd !== undefined) parts.push(money(d.cost_usd));
    if (d.duration_ms !== undefined) parts.push(d.duration_ms < 1 ? "<1 ms" : ms(d.duration_ms));
    if (d.model) parts.push(d.model);
    if (d.problem) parts.push(d.problem);
    if (d.window) parts.push(d.window + " window");
    if (d.reason) parts.push(d.reason);
    if (d.limit) parts.push("limit " + d.limit);
    if (d.actor) parts.push("by " + d.actor);
    if (d.name) parts.push(d.name);
    if (d.fields) parts.push("changed " + d.fields.join(", "));
    return parts.join(" · ");
  }
  function badgeFor(e) {
    const bad = e.type.endsWith("refused") || e.type === "permission.denied" || (e.status && e.status >= 400)
      || (e.detail && e.detail.ok === false);
    const warn = e.type === "budget.alert";
    return h("span", { class: "badge " + (bad ? "bad" : warn ? "warn" : e.type.startsWith("admin") ? "" : "ok"), text: e.type });
  }
  function renderAudit(events, withTenant) {
    if (!events.length) {
      $("audit").replaceChildren(h("caption", { class: "empty", text: "No audit events yet." }));
      return;
    }
    const head = [["When"], ["Type"]].concat(withTenant ? [["Tenant"]] : [], [["Team / operation"], ["Status", "num"], ["Detail"]]);
    table($("audit"), head, events.slice(0, 25).map((e) => h("tr", { "data-type": e.type },
      h("td", { class: "when", title: e.at, text: when(e.at) }), h("td", { class: "type" }, badgeFor(e)),
      withTenant ? h("td", { class: "tenant", text: tenantName(e.tenant_id) }) : null,
      h("td", { class: "op", text: [e.team, e.operation].filter(Boolean).join(" / ") || "–" }),
      h("td", { class: "num code", text: e.status || "" }),
      h("td", { class: "detail", text: detailText(e) }))));
  }
  function tenantName(id) {
    const t = state.tenants.find((x) => x.tenant_id === id);
    return t ? t.name : id;
  }
  function usedPct(w) {
    const used = w.limit_usd > 0 ? w.spent_usd / w.limit_usd : 0;
    return h("span", { class: "pct", title: `${money(w.remaining_usd)} left of ${money(w.limit_usd)}`, text: pct(used) });
  }
  function renderTenants(rows) {
    const th = (t) => t.alert_threshold;
    table($("tenants"), [["Tenant"], ["Today", "num"], ["Day budget"], ["Month", "num"], ["Month budget", "hide-narrow"],
      ["Calls", "num"], ["Errors", "num"], ["p95", "num"]],
      rows.map((t) => {
        const day = t.windows.find((w) => w.window === "day"), month = t.windows.find((w) => w.window === "month");
        const tr = h("tr", { class: "clickable", "data-tenant": t.tenant_id, title: "Show this tenant" },
          h("td", {}, t.name, t.disabled ? h("span", { class: "badge bad", text: " disabled" }) : null),
          h("td", { class: "num", text: money(t.spent_usd.day) }),
          h("td", { class: "barcell" }, budgetBar(day, th(t)), usedPct(day)),
          h("td", { class: "num", text: money(t.spent_usd.month) }),
          h("td", { class: "barcell hide-narrow" }, budgetBar(month, th(t)), usedPct(month)),
          h("td", { class: "num", text: int(t.operations) }),
          h("td", { class: "num", text: pct(t.error_rate) }),
          h("td", { class: "num", text: ms(t.latency_ms.p95) }));
        tr.addEventListener("click", () => { $("tenant").value = t.tenant_id; load(); });
        return tr;
      }));
  }

  // ---------- data ----------
  async function api(path) {
    const resp = await fetch(path, { headers: { Authorization: "Bearer " + state.key, Accept: "application/json" },
      credentials: "omit", cache: "no-store", referrerPolicy: "no-referrer" });
    let body = null;
    try { body = await resp.json(); } catch (e) { body = null; }
    if (!resp.ok) {
      const err = new Error((body && (body.detail || body.title)) || `HTTP ${resp.status}`);
      err.status = resp.status;
      throw err;
    }
    return body;
  }
  function status(text, isError) {
    $("status").textContent = text;
    $("status").className = "status" + (isError ? " error" : "");
  }
  async function detectMode() {
    // tenant keys have a fixed prefix, so no request has to fail to tell the two kinds apart
    if (state.key.startsWith("mak_")) {
      try {
        await api("/v1/usage");
        return "tenant";
      } catch (e) {
        if (e.status === 401) e.message = "This key is neither a live tenant key nor the admin key.";
        throw e;
      }
    }
    try {
      await api("/v1/admin/overview?hours=1");
      return "admin";
    } catch (e) {
      if ([401, 403, 404].includes(e.status)) {
        const err = new Error("This key is neither a live tenant key nor the admin key.");
        err.status = 401;
        throw err;
      }
      throw e;
    }
  }
  async function load() {
    const hours = +$("hours").value;
    document.body.dataset.state = "loading";
    status("Loading…");
    try {
      if (!state.mode) state.mode = await detectMode();
      const tenant = $("tenant").value;
      if (state.mode === "tenant") {
        const [u, st, au] = await Promise.all([api("/v1/usage"), api(`/v1/stats?hours=${hours}`), api("/v1/audit?limit=25")]);
        $("scope").textContent = st.tenant_name ? `${st.tenant_name} · ${u.tenant_id}` : `Tenant ${u.tenant_id}`;
        showTenantPanels(true);
        renderUsage(u); renderStats(st, hours); renderAudit(au.events, false);
      } else {
        const ov = await api(`/v1/admin/overview?hours=${hours}`);
        state.tenants = ov.tenants;
        fillTenantPicker(ov.tenants);
        $("tenant-picker").hidden = false;
        if (tenant) {
          const base = `/v1/admin/tenants/${encodeURIComponent(tenant)}`;
          const [u, st, au] = await Promise.all([api(base + "/usage"), api(`${base}/stats?hours=${hours}`), api(base + "/audit?limit=25")]);
          $("scope").textContent = `Admin · tenant ${tenantName(tenant)} (${tenant})`;
          showTenantPanels(true);
          renderUsage(u); renderStats(st, hours); renderAudit(au.events, false);
        } else {
          $("scope").textContent = `Admin · all ${ov.tenants.length} tenants`;
          showTenantPanels(false);
          const u = ov.usage;
          setKpi("kpi-day", money(u.spent_usd.day), u.spent_usd.day, "all tenants");
          setKpi("kpi-month", money(u.spent_usd.month), u.spent_usd.month, "all tenants");
          renderTenants(ov.tenants); renderSpend(u); renderStats(ov.stats, hours); renderAudit(ov.audit, true);
        }
      }
      $("updated").textContent = "Updated " + new Date().toLocaleTimeString();
      status("");
      document.body.dataset.state = "ready";
    } catch (e) {
      document.body.dataset.state = "error";
      if (e.status === 401) { forget(); $("key-error").textContent = e.message; return; }
      status("Could not load: " + e.message, true);
    }
  }
  function showTenantPanels(single) {
    $("budget-card").hidden = !single;
    $("tenants-card").hidden = single;
    $("spend-day").closest(".card").classList.toggle("span2", !single);  // fill the row the budget card leaves
  }
  function fillTenantPicker(tenants) {
    const sel = $("tenant"), current = sel.value;
    sel.replaceChildren(h("option", { value: "", text: "All tenants" }),
      ...tenants.map((t) => h("option", { value: t.tenant_id, text: t.name })));
    sel.value = tenants.some((t) => t.tenant_id === current) ? current : "";
  }

  // ---------- key handling ----------
  function start(key) {
    state.key = key; state.mode = null;
    try { sessionStorage.setItem(STORAGE, key); } catch (e) { /* private mode: memory only */ }
    $("keyform-section").hidden = true; $("main").hidden = false; $("controls").hidden = false;
    load();
    clearInterval(state.timer);
    state.timer = setInterval(() => { if (!document.hidden && document.body.dataset.state !== "loading") load(); }, 30000);
  }
  function forget() {
    state.key = null; state.mode = null;
    clearInterval(state.timer);
    try { sessionStorage.removeItem(STORAGE); } catch (e) { /* ignore */ }
    $("main").hidden = true; $("controls").hidden = true; $("tenant-picker").hidden = true;
    $("keyform-section").hidden = false; $("scope").textContent = "No key yet";
    document.body.dataset.state = "need-key";
  }
  function keyFromFragment() {
    const params = new URLSearchParams(location.hash.replace(/^#/, ""));
    const key = params.get("key");
    if (key) history.replaceState(null, "", location.pathname + location.search);  // off the address bar
    return key;
  }
  $("keyform").addEventListener("submit", (ev) => {
    ev.preventDefault();
    const key = $("key").value.trim();
    $("key").value = "";
    $("key-error").textContent = "";
    if (key) start(key);
  });
  $("refresh").addEventListener("click", () => load());
  $("hours").addEventListener("change", () => load());
  $("tenant").addEventListener("change", () => load());
  $("forget").addEventListener("click", () => { forget(); status(""); });
  window.addEventListener("hashchange", () => { const k = keyFromFragment(); if (k) start(k); });
  let initial = keyFromFragment();
  if (!initial) { try { initial = sessionStorage.getItem(STORAGE); } catch (e) { initial = null; } }
  if (initial) start(initial); else forget();
})();
