// switchboard console: five views over one server-sent event stream (overview and
// traffic, once a second) and the console API (translate, webhooks, sessions).
(function () {
  "use strict";
  const csrf = document.querySelector('meta[name="csrf"]').content;
  const $ = (id) => document.getElementById(id);
  const el = (tag, text, attrs) => {
    const e = document.createElement(tag);
    if (text !== undefined && text !== null) e.textContent = String(text);
    for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
    return e;
  };
  const post = (url, body) => fetch(url, {
    method: "POST",
    headers: { "content-type": "application/json", "x-console-csrf": csrf },
    body: body === undefined ? "" : JSON.stringify(body),
  }).then((r) => r.json());
  const get = (url) => fetch(url).then((r) => r.json());
  const time = (ms) => new Date(ms).toLocaleTimeString();

  // Views: buttons in the header, the hash remembers the one shown.
  let current = "overview";
  function show(view) {
    current = view;
    for (const b of document.querySelectorAll("nav button")) {
      if (b.dataset.view === view) b.setAttribute("aria-current", "page");
      else b.removeAttribute("aria-current");
    }
    for (const s of document.querySelectorAll(".view")) s.hidden = s.id !== "view-" + view;
    if (location.hash !== "#" + view) history.replaceState(null, "", "#" + view);
    if (view === "webhooks") loadWebhooks();
    if (view === "overview") resizeCharts();
  }
  for (const b of document.querySelectorAll("nav button")) b.addEventListener("click", () => show(b.dataset.view));
  $("logout").addEventListener("click", () => post("/console/logout").then(() => location.assign("/console/login")));

  // Overview: cards and three plots (uPlot).
  const charts = {};
  function chart(id, label, color) {
    const host = $(id);
    const opts = {
      width: Math.max(260, host.clientWidth || 320), height: 160,
      series: [{}, { label, stroke: color, width: 1.5, fill: color + "22" }],
      axes: [{}, { size: 50 }], legend: { show: false }, cursor: { drag: { x: false, y: false } },
    };
    charts[id] = new uPlot(opts, [[], []], host);
  }
  function resizeCharts() {
    for (const [id, c] of Object.entries(charts)) {
      const w = $(id).clientWidth;
      if (w > 0) c.setSize({ width: w, height: 160 });
    }
  }
  window.addEventListener("resize", resizeCharts);
  chart("chart-in", "in/s", "#1f6feb");
  chart("chart-out", "out/s", "#1a7f37");
  chart("chart-failures", "failures/s", "#b42318");

  function overview(o) {
    if (!o || !o.instances) return;
    const inst = Array.isArray(o.instances) ? o.instances : [];
    $("ov-instances").textContent = inst.length;
    const il = $("ov-instance-list");
    il.replaceChildren(...inst.map((i) => el("li", `${i.instance} (${i.bus}): ${i.connections} connections, ${i.rooms} rooms`)));
    const rows = o.connections || [];
    $("ov-connections").textContent = rows.reduce((n, r) => n + r.connections, 0);
    $("conn-table").tBodies[0].replaceChildren(...rows.map((r) => {
      const tr = el("tr", null, { "data-dialect": r.dialect, "data-transport": r.transport });
      tr.append(el("td", r.dialect), el("td", r.transport), el("td", r.connections, { class: "count" }));
      return tr;
    }));
    const bus = [el("li", `bus: ${o.bus.kind} ${o.bus.ready ? "up" : "DOWN"}`, { class: o.bus.ready ? "ok" : "error" })];
    if (o.amqp !== null && o.amqp !== undefined) bus.push(el("li", `RabbitMQ: ${o.amqp ? "up" : "DOWN"}`, { class: o.amqp ? "ok" : "error" }));
    bus.push(el("li", `webhook dead letters: ${o.deadLetters}`));
    $("ov-bus").replaceChildren(...bus);
    const ups = o.upstreams || [];
    $("ov-upstreams").replaceChildren(...(ups.length ? ups.map((u) => el("li", `${u.upstream}: ${u.sessions} sessions`)) : [el("li", "none fronted")]));
    const s = o.series || {};
    if (s.t) {
      charts["chart-in"].setData([s.t, s.in]);
      charts["chart-out"].setData([s.t, s.out]);
      charts["chart-failures"].setData([s.t, s.failures]);
    }
  }

  // Traffic: a filterable tail of sampled deliveries; a row opens the event in every dialect.
  let paused = false;
  const MAX_ROWS = 200;
  $("tf-pause").addEventListener("click", () => {
    paused = !paused;
    $("tf-pause").textContent = paused ? "Resume" : "Pause";
  });
  function matches(tr) {
    const f = $("tf-filter").value.trim().toLowerCase();
    return !f || tr.dataset.text.includes(f);
  }
  $("tf-filter").addEventListener("input", () => {
    for (const tr of $("traffic-rows").rows) tr.hidden = !matches(tr);
  });
  function traffic(samples, skipped) {
    $("tf-skipped").textContent = skipped ? `sampled: ${skipped} deliveries not shown` : "";
    if (paused) return;
    const body = $("traffic-rows");
    for (const s of samples) {
      const to = s.to.map((t) => `${t.dialect}×${t.connections}`).join(", ");
      const tr = el("tr", null, { tabindex: "0", "data-seq": s.seq });
      tr.dataset.text = `${s.name} ${s.from || ""} ${to} ${s.room || ""}`.toLowerCase();
      tr.append(el("td", time(s.at)), el("td", s.name, { class: "event" }), el("td", `${s.from || "api"} → ${to || "nobody"}`), el("td", s.room || ""), el("td", s.size));
      const open = () => detail(s.seq);
      tr.addEventListener("click", open);
      tr.addEventListener("keydown", (e) => { if (e.key === "Enter") open(); });
      tr.hidden = !matches(tr);
      body.prepend(tr);
    }
    while (body.rows.length > MAX_ROWS) body.deleteRow(-1);
  }
  function detail(seq) {
    get("/console/api/traffic/" + seq).then((d) => {
      const box = $("tf-detail");
      box.hidden = false;
      if (d.error) { box.replaceChildren(el("p", d.error, { class: "error" })); return; }
      const parts = [el("h3", `${d.summary.name}: canonical`), el("pre", JSON.stringify(d.canonical, null, 2), { id: "tf-canonical" })];
      for (const x of d.dialects) {
        parts.push(el("h3", x.dialect + (x.dialect === d.origin ? " (origin)" : "")));
        parts.push(x.frame ? el("pre", x.frame, { "data-dialect": x.dialect }) : el("p", x.error, { class: "hint" }));
      }
      box.replaceChildren(...parts);
    });
  }

  // Translate: what `switchboard translate` prints, with the fields lost.
  get("/console/api/dialects").then((d) => {
    const names = ["canonical", ...d.dialects];
    for (const id of ["tr-from", "tr-to"]) $(id).replaceChildren(...names.map((n) => el("option", n, { value: n })));
    $("tr-from").value = "salala";
    $("tr-to").value = "nexus";
  });
  $("tr-form").addEventListener("submit", (e) => {
    e.preventDefault();
    post("/console/api/translate", { from: $("tr-from").value, to: $("tr-to").value, direction: $("tr-dir").value, frame: $("tr-frame").value })
      .then((r) => {
        $("tr-output").textContent = (r.output || []).join("\n");
        $("tr-error").textContent = r.error ? r.error : "";
        const lost = (r.lost || []).length ? `lost: ${r.lost.join(", ")}` : (r.output && r.output.length ? "nothing lost" : "");
        const changed = (r.changed || []).length ? `; changed: ${r.changed.join(", ")}` : "";
        $("tr-lost").textContent = lost + changed;
      });
  });
  $("mx-load").addEventListener("click", () => get("/console/api/matrix").then((m) => { $("mx-text").textContent = m.text; }));

  // Webhooks: endpoints, their last attempts, dead letters to replay.
  function loadWebhooks() {
    get("/console/api/webhooks").then((w) => {
      $("wh-endpoints").tBodies[0].replaceChildren(...(w.endpoints || []).map((e) => {
        const tr = el("tr");
        const recent = (e.recent || []).slice(0, 5).map((a) => `${a.status || a.outcome} ${a.latencyMs} ms`).join(", ");
        tr.append(el("td", e.name), el("td", e.url), el("td", e.queued === null ? "in RabbitMQ" : e.queued), el("td", e.disabled ? "disabled (410)" : "active"), el("td", recent || "none yet"));
        return tr;
      }));
      const dead = Array.isArray(w.dead) ? w.dead : [];
      $("wh-dead").tBodies[0].replaceChildren(...dead.map((d) => {
        const tr = el("tr");
        const b = el("button", "Replay", { class: "replay", "data-id": d.id });
        b.addEventListener("click", () => replay(d.id));
        const td = el("td");
        td.append(b);
        tr.append(el("td", d.id), el("td", d.endpoint), el("td", d.type || d.kind || ""), el("td", d.lastError || ""), el("td", d.at || ""), td);
        return tr;
      }));
    });
  }
  function replay(id) {
    post("/console/api/webhooks/dead/replay" + (id ? "?id=" + encodeURIComponent(id) : ""))
      .then((r) => { $("wh-said").textContent = r.error ? r.error : `replayed ${r.replayed}`; loadWebhooks(); });
  }
  $("wh-replay-all").addEventListener("click", () => replay(null));
  setInterval(() => { if (current === "webhooks") loadWebhooks(); }, 2000);

  // Sessions: a user's connections on every instance, and disconnecting them.
  function loadSessions(user) {
    get("/console/api/sessions?user=" + encodeURIComponent(user)).then((p) => {
      if (p.error) { $("sess-state").textContent = p.error; return; }
      $("sess-state").textContent = p.isOnline ? `${p.userId} is online` : `${p.userId} is offline`;
      $("sess-table").tBodies[0].replaceChildren(...(p.sockets || []).map((s) => {
        const tr = el("tr");
        tr.append(el("td", s.instance || ""), el("td", s.dialect || ""), el("td", s.transport || ""), el("td", s.rooms ? s.rooms.join(", ") : "(another instance)"), el("td", time(s.connectedAt)));
        return tr;
      }));
      $("sess-disconnect").hidden = !p.isOnline;
      $("sess-disconnect").dataset.user = p.userId;
    });
  }
  $("sess-form").addEventListener("submit", (e) => { e.preventDefault(); loadSessions($("sess-user").value.trim()); });
  $("sess-disconnect").addEventListener("click", () => {
    const u = $("sess-disconnect").dataset.user;
    post("/console/api/users/" + encodeURIComponent(u) + "/disconnect").then((r) => {
      $("sess-state").textContent = r.error ? r.error : `${u} disconnected`;
      setTimeout(() => loadSessions(u), 500);
    });
  });

  // The stream.
  function connect() {
    const es = new EventSource("/console/api/stream");
    es.onopen = () => { $("live").textContent = "live"; };
    es.onmessage = (m) => {
      const d = JSON.parse(m.data);
      overview(d.overview);
      traffic(d.traffic || [], d.skipped || 0);
      $("live").textContent = "live " + new Date().toLocaleTimeString();
    };
    es.onerror = () => { $("live").textContent = "reconnecting…"; };
  }
  connect();
  show((location.hash || "#overview").slice(1) || "overview");
})();
