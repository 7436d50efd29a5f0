/* Stratus console: each page's data comes from the JSON API with the token the sign-in page stored
   (an access token or an sk- API key), live job updates from the WebSocket. No build step. */
(function () {
  "use strict";
  const body = document.body;
  const ROOT = body.dataset.root || "";
  const PAGE = body.dataset.page;
  const ITEM = body.dataset.id;
  const TOKEN_KEY = "stratus.token";
  const TERMINAL = ["completed", "failed", "stopped", "cancelled"];
  const NOT_CURVES = ["learning_rate", "lr", "tokens_per_s", "epoch", "step"];

  const token = () => localStorage.getItem(TOKEN_KEY);
  const $ = (sel) => document.querySelector(sel);

  // htmx requests carry the same credentials as the page's own calls.
  document.addEventListener("htmx:configRequest", (e) => {
    if (token()) e.detail.headers["Authorization"] = "Bearer " + token();
  });

  function flash(message, ok) {
    const el = $("#flash");
    if (!el) return;
    el.textContent = message;
    el.className = ok ? "ok" : "";
    el.hidden = !message;
  }

  class ApiError extends Error {
    constructor(status, body) {
      super((body && (body.message || (typeof body.detail === "string" ? body.detail : null))) || "HTTP " + status);
      this.status = status;
      this.body = body;
    }
  }

  async function api(method, path, options) {
    options = options || {};
    const headers = Object.assign({ Accept: "application/json" }, options.headers || {});
    if (token() && !options.anonymous) headers.Authorization = "Bearer " + token();
    let payload;
    if (options.json !== undefined) {
      headers["Content-Type"] = "application/json";
      payload = JSON.stringify(options.json);
    } else if (options.form) {
      payload = options.form;
    }
    for (let attempt = 0; ; attempt++) {
      const response = await fetch(ROOT + path, { method, headers, body: payload });
      if ((response.status === 429 || response.status === 503) && attempt < 3) {
        const wait = parseFloat(response.headers.get("Retry-After") || "1");
        await new Promise((r) => setTimeout(r, Math.min(wait, 10) * 1000));
        continue;
      }
      const text = await response.text();
      const data = text ? JSON.parse(text) : null;
      if (response.status === 401 && !options.anonymous) {
        localStorage.removeItem(TOKEN_KEY);
        location.href = ROOT + "/console/signin?next=" + encodeURIComponent(location.pathname);
        throw new ApiError(401, data);
      }
      if (!response.ok) throw new ApiError(response.status, data);
      return data;
    }
  }

  function items(body) {
    if (Array.isArray(body)) return body;
    for (const value of Object.values(body || {})) if (Array.isArray(value)) return value;
    return [];
  }

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === null || v === undefined) continue;
      if (k === "onclick") node.addEventListener("click", v);
      else if (k === "className") node.className = v;
      else node.setAttribute(k, v);
    }
    for (const child of children.flat()) {
      if (child === null || child === undefined) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }

  function fill(table, rows) {
    const tbody = table.querySelector("tbody");
    tbody.replaceChildren(...rows);
    if (!rows.length) {
      const cols = table.querySelectorAll("thead th").length || 1;
      tbody.append(el("tr", {}, el("td", { colspan: cols, className: "muted" }, "Nothing yet.")));
    }
  }

  const when = (iso) => (iso ? new Date(iso).toLocaleString() : "");
  const num = (v) => (typeof v === "number" ? (Number.isInteger(v) ? String(v) : v.toPrecision(4)) : v ?? "");
  const bytes = (n) => (n == null ? "" : n < 1024 ? n + " B" : n < 1048576 ? (n / 1024).toFixed(1) + " KB" : (n / 1048576).toFixed(1) + " MB");
  const statusCell = (s) => el("span", { className: "status-" + s }, s);
  const fields = (form) => Object.fromEntries(new FormData(form).entries());

  function eta(job) {
    const p = Number(job.progress || 0);
    if (TERMINAL.includes(job.status) || !job.started_at || p <= 0 || p >= 100) return "";
    const elapsed = (Date.now() - new Date(job.started_at).getTime()) / 1000;
    const left = Math.max(0, (elapsed * (100 - p)) / p);
    return left < 60 ? Math.round(left) + " s" : Math.round(left / 60) + " min";
  }

  function websocketUrl(jobId) {
    const base = body.dataset.ws || (location.protocol === "https:" ? "wss://" : "ws://") + location.host + ROOT + "/ws";
    return base + "?follow=" + encodeURIComponent(jobId);
  }

  /* Follows a job: onMessage gets each {type, data}; falls back to polling the event log. */
  function follow(jobId, onMessage, onLive) {
    let done = false;
    let polling = false;
    const poll = async () => {
      if (polling) return;
      polling = true;
      let cursor = null;
      while (!done) {
        const page = await api("GET", "/api/jobs/" + jobId + "/events" + (cursor ? "?cursor=" + cursor : ""));
        for (const event of page.events) {
          onMessage({ type: event.type, data: event.data });
          if (TERMINAL.includes((event.data || {}).status)) done = true;
        }
        cursor = page.next_cursor || cursor;
        if (!page.next_cursor) await new Promise((r) => setTimeout(r, 2000));
      }
    };
    try {
      // Browsers cannot set Authorization on a WebSocket: the token travels as a subprotocol.
      const ws = new WebSocket(websocketUrl(jobId), ["bearer", token()]);
      ws.onopen = () => onLive && onLive(true);
      ws.onmessage = (e) => {
        const message = JSON.parse(e.data);
        onMessage(message);
        if (TERMINAL.includes((message.data || {}).status)) {
          done = true;
          ws.close();
        }
      };
      ws.onclose = () => {
        onLive && onLive(false);
        if (!done) poll();
      };
    } catch (e) {
      poll();
    }
    return () => (done = true);
  }

  /* ---------------------------------------------------------------- pages ---- */
  const pages = {};

  pages.signin = function () {
    const next = new URLSearchParams(location.search).get("next") || ROOT + "/console/jobs";
    const signedIn = (accessToken) => {
      localStorage.setItem(TOKEN_KEY, accessToken);
      location.href = next;
    };
    $("#signin-form").addEventListener("submit", async (e) => {
      e.preventDefault();
      try {
        const tokens = await api("POST", "/api/auth/login", { json: fields(e.target), anonymous: true });
        signedIn(tokens.access_token);
      } catch (err) {
        flash(err.message);
      }
    });
    $("#apikey-form").addEventListener("submit", async (e) => {
      e.preventDefault();
      const key = fields(e.target).api_key.trim();
      try {
        await api("GET", "/api/auth/me", { headers: { Authorization: "Bearer " + key }, anonymous: true });
        signedIn(key);
      } catch (err) {
        flash(err.message);
      }
    });
    $("#register-form").addEventListener("submit", async (e) => {
      e.preventDefault();
      try {
        const user = await api("POST", "/api/auth/register", { json: fields(e.target), anonymous: true });
        signedIn(user.access_token);
      } catch (err) {
        flash(err.message);
      }
    });
  };

  pages.jobs = async function () {
    const select = $("#train-dataset");
    const datasets = items(await api("GET", "/api/datasets?limit=100")).filter((d) => d.status === "ready");
    select.replaceChildren(...datasets.map((d) => el("option", { value: d.id }, d.name)));
    $("#train-form").addEventListener("submit", async (e) => {
      e.preventDefault();
      const f = fields(e.target);
      try {
        const started = await api("POST", "/training/start", {
          json: {
            dataset_id: f.dataset_id,
            model_type: f.model_type,
            hyperparameters: { epochs: Number(f.epochs), learning_rate: Number(f.learning_rate) },
          },
          headers: { "Idempotency-Key": crypto.randomUUID ? crypto.randomUUID() : String(Date.now()) },
        });
        location.href = ROOT + "/console/jobs/" + started.job_id;
      } catch (err) {
        flash(err.message);
      }
    });
    const refresh = async () => {
      const jobs = (await api("GET", "/api/jobs?limit=50")).jobs;
      const queued = jobs.filter((j) => j.status === "queued").sort((a, b) => a.created_at.localeCompare(b.created_at));
      fill(
        $("#jobs-table"),
        jobs.map((j) => {
          const position = queued.indexOf(j);
          const status = position >= 0 ? j.status + " #" + (position + 1) : j.status;
          return el(
            "tr",
            { className: "clickable", "data-job": j.id, onclick: () => (location.href = ROOT + "/console/jobs/" + j.id) },
            el("td", { className: "mono" }, el("a", { href: ROOT + "/console/jobs/" + j.id }, j.id.slice(-8))),
            el("td", {}, j.kind),
            el("td", {}, statusCell(status)),
            el("td", {}, el("progress", { max: 100, value: j.progress || 0 }), " ", Math.round(j.progress || 0) + "%"),
            el("td", {}, eta(j)),
            el("td", {}, when(j.created_at))
          );
        })
      );
    };
    await refresh();
    setInterval(refresh, 3000);
  };

  pages.job = async function () {
    const id = ITEM;
    const points = new Map(); // seq -> {epoch, metrics}
    const series = [];
    let plot = null;
    const chartEl = $("#job-chart");

    function draw() {
      const rows = [...points.values()].sort((a, b) => a.seq - b.seq);
      for (const r of rows) for (const k of Object.keys(r.metrics)) if (!series.includes(k) && !NOT_CURVES.includes(k) && typeof r.metrics[k] === "number") series.push(k);
      if (!rows.length || !series.length) return;
      const xs = rows.map((r, i) => (r.epoch || r.step || i + 1));
      const data = [xs, ...series.map((k) => rows.map((r) => (typeof r.metrics[k] === "number" ? r.metrics[k] : null)))];
      chartEl.dataset.points = String(rows.length);
      chartEl.dataset.series = series.join(",");
      const width = Math.max(260, chartEl.clientWidth);
      if (!plot || plot.series.length !== series.length + 1) {
        if (plot) plot.destroy();
        const colors = ["#2f6fde", "#e67e22", "#1e8e3e", "#c0392b", "#8e44ad", "#16a085"];
        plot = new uPlot(
          {
            width,
            height: 260,
            scales: { x: { time: false } },
            axes: [{ label: rows.some((r) => r.epoch) ? "epoch" : "step" }, {}],
            series: [{ label: "x" }, ...series.map((k, i) => ({ label: k, stroke: colors[i % colors.length], width: 2 }))],
          },
          data,
          chartEl
        );
      } else {
        plot.setData(data);
      }
    }

    const log = $("#job-events");
    function logEvent(message) {
      const d = message.data || {};
      const text =
        message.type === "progress"
          ? "progress " + Math.round(d.progress || 0) + "%" + (d.total_epochs ? " epoch " + d.current_epoch + "/" + d.total_epochs : "") +
            Object.entries(d.metrics || {}).map(([k, v]) => " " + k + "=" + num(v)).join("")
          : message.type + " " + (d.status || "") + (d.error ? ": " + d.error : "");
      log.append(el("li", {}, text));
      log.scrollTop = log.scrollHeight;
    }

    function onProgress(d) {
      if (d.seq != null) points.set(d.seq, { seq: d.seq, epoch: d.current_epoch, step: d.current_step, metrics: d.metrics || {} });
      $("#job-progress").value = d.progress || 0;
      if (d.total_epochs) $("#job-epoch").textContent = d.current_epoch + " / " + d.total_epochs;
      if (d.status) $("#job-status").textContent = d.status;
      draw();
    }

    async function showJob() {
      const job = await api("GET", "/api/jobs/" + id);
      $("#job-status").textContent = job.status;
      $("#job-kind").textContent = job.kind;
      $("#job-progress").value = job.progress || 0;
      $("#job-eta").textContent = eta(job) || "–";
      if (job.total_epochs) $("#job-epoch").textContent = job.current_epoch + " / " + job.total_epochs;
      $("#job-cancel").hidden = TERMINAL.includes(job.status);
      if (TERMINAL.includes(job.status)) {
        const out = $("#job-outputs");
        out.className = "";
        out.replaceChildren(
          job.error ? el("p", { className: "status-failed" }, job.error) : "",
          job.model_id ? el("p", {}, "Model ", el("span", { className: "mono", id: "job-model" }, job.model_id)) : "",
          el("div", { className: "scroll" }, el("table", {}, el("tbody", {},
            Object.entries(job.final_metrics || {}).map(([k, v]) => el("tr", {}, el("th", {}, k), el("td", {}, num(v))))
          )))
        );
      }
      return job;
    }

    // History first (the event log), then live updates.
    let cursor = null;
    do {
      const page = await api("GET", "/api/jobs/" + id + "/events?limit=200" + (cursor ? "&cursor=" + cursor : ""));
      for (const event of page.events) {
        logEvent(event);
        if (event.type === "progress") onProgress(event.data);
      }
      cursor = page.next_cursor;
    } while (cursor);
    const job = await showJob();
    $("#job-cancel").addEventListener("click", async () => {
      try {
        await api("POST", "/api/jobs/" + id + "/cancel");
        await showJob();
      } catch (err) {
        flash(err.message);
      }
    });
    if (!TERMINAL.includes(job.status)) {
      follow(
        id,
        async (message) => {
          if (message.type === "connected" || message.type === "subscribed") return;
          logEvent(message);
          if (message.type === "progress") {
            onProgress(message.data);
            $("#job-eta").textContent = eta(Object.assign({ status: "running" }, message.data)) || "–";
          } else if (message.type === "status" || message.type === "error") {
            await showJob();
          }
        },
        (live) => ($("#job-live").textContent = live ? "live" : "")
      );
    }
    window.addEventListener("resize", () => plot && plot.setSize({ width: Math.max(260, chartEl.clientWidth), height: 260 }));
  };

  pages.datasets = async function () {
    const refresh = async () => {
      const datasets = items(await api("GET", "/api/datasets?limit=100"));
      fill(
        $("#datasets-table"),
        datasets.map((d) =>
          el(
            "tr",
            { "data-dataset": d.id },
            el("td", {}, el("a", { href: ROOT + "/console/datasets/" + d.id }, d.name)),
            el("td", {}, statusCell(d.status)),
            el("td", {}, num(d.row_count)),
            el("td", {}, num(d.column_count)),
            el("td", {}, bytes(d.file_size)),
            el("td", {}, when(d.created_at)),
            el("td", {}, el("button", { className: "small danger", onclick: async () => {
              if (!confirm("Delete " + d.name + "?")) return;
              try { await api("DELETE", "/api/datasets/" + d.id); await refresh(); } catch (err) { flash(err.message); }
            } }, "Delete"))
          )
        )
      );
      return datasets;
    };
    $("#upload-form").addEventListener("submit", (e) => {
      e.preventDefault();
      const form = new FormData(e.target);
      if (!form.get("name")) form.delete("name");
      if (!form.get("dataset_type")) form.delete("dataset_type");
      const bar = $("#upload-progress");
      const status = $("#upload-status");
      bar.hidden = false;
      bar.value = 0;
      // XMLHttpRequest reports upload progress; fetch does not.
      const xhr = new XMLHttpRequest();
      xhr.open("POST", ROOT + "/api/datasets/upload");
      xhr.setRequestHeader("Authorization", "Bearer " + token());
      xhr.upload.onprogress = (p) => {
        if (p.lengthComputable) {
          bar.value = (100 * p.loaded) / p.total;
          status.textContent = bytes(p.loaded) + " / " + bytes(p.total);
        }
      };
      xhr.onload = async () => {
        const data = xhr.responseText ? JSON.parse(xhr.responseText) : {};
        if (xhr.status >= 400) {
          flash(data.message || "Upload failed (" + xhr.status + ")");
          status.textContent = "";
          return;
        }
        bar.value = 100;
        status.textContent = "Uploaded " + data.name + ": " + data.status;
        flash("Uploaded " + data.name, true);
        e.target.reset();
        await refresh();
      };
      xhr.onerror = () => flash("Upload failed: the connection dropped");
      xhr.send(form);
    });
    const datasets = await refresh();
    if (datasets.some((d) => d.status === "processing" || d.status === "uploading")) setTimeout(refresh, 2000);
  };

  pages.dataset = async function () {
    const d = await api("GET", "/api/datasets/" + ITEM);
    document.querySelector("h1").firstChild.textContent = d.name + " ";
    $("#dataset-summary").replaceChildren(
      el("span", {}, "Status ", statusCell(d.status)),
      el("span", {}, "Rows ", el("strong", {}, num(d.row_count))),
      el("span", {}, "Columns ", el("strong", {}, num(d.column_count))),
      el("span", {}, "Format ", el("strong", {}, d.format || "")),
      el("span", {}, "Size ", el("strong", {}, bytes(d.file_size))),
      d.error ? el("span", { className: "status-failed" }, d.error) : ""
    );
    const columns = d.columns || [];
    fill(
      $("#profile-table"),
      columns.map((c) => el("tr", {}, el("td", {}, c.name), el("td", {}, c.type), el("td", {}, num(c.non_null)), el("td", {}, num(c.nulls))))
    );
    if (columns.length && window.vegaEmbed) {
      const values = columns.flatMap((c) => [
        { column: c.name, kind: "values", count: c.non_null },
        { column: c.name, kind: "missing", count: c.nulls },
      ]);
      window.vegaEmbed(
        "#profile-chart",
        {
          $schema: "https://vega.github.io/schema/vega-lite/v5.json",
          data: { values },
          mark: "bar",
          width: "container",
          height: 180,
          encoding: {
            y: { field: "column", type: "nominal", title: null },
            x: { field: "count", type: "quantitative", stack: "zero" },
            color: { field: "kind", type: "nominal", scale: { range: ["#2f6fde", "#e67e22"] } },
          },
        },
        { actions: false, renderer: "svg" }
      ).catch((err) => flash(err.message));
    }
    if (d.status === "ready") {
      const page = await api("GET", "/api/datasets/" + ITEM + "/rows?limit=50");
      const names = columns.length ? columns.map((c) => c.name) : Object.keys(page.rows[0] || {});
      const table = $("#preview-table");
      table.querySelector("thead").replaceChildren(el("tr", {}, names.map((n) => el("th", {}, n))));
      fill(table, page.rows.map((row) => el("tr", {}, names.map((n) => el("td", {}, num(row[n]))))));
    }
  };

  pages.models = async function () {
    const refresh = async () => {
      const models = items(await api("GET", "/api/models?limit=100"));
      fill(
        $("#models-table"),
        models.map((m) =>
          el("tr", {}, el("td", {}, m.name), el("td", {}, m.source || ""), el("td", {}, m.task || ""), el("td", {}, m.model_type || ""),
            el("td", {}, statusCell(m.status || "")), el("td", { className: "mono" }, m.id))
        )
      );
    };
    const builtin = items(await api("GET", "/models?source=builtin&limit=100"));
    fill(
      $("#builtin-table"),
      builtin.map((m) => el("tr", {}, el("td", {}, m.name || m.model_name || m.id), el("td", {}, m.task || ""), el("td", {}, m.model_type || m.type || "")))
    );
    $("#download-form").addEventListener("submit", async (e) => {
      e.preventDefault();
      try {
        const started = await api("POST", "/models/download", {
          json: fields(e.target),
          headers: { "Idempotency-Key": crypto.randomUUID ? crypto.randomUUID() : String(Date.now()) },
        });
        const id = started.download_id || started.job_id;
        $("#download-watch").hidden = false;
        $("#download-status").textContent = "queued";
        follow(id, async (message) => {
          const d = message.data || {};
          if (message.type === "progress") {
            $("#download-progress").value = d.progress || 0;
            $("#download-status").textContent = Math.round(d.progress || 0) + "%" +
              (d.files_total ? " · files " + (d.files_done || 0) + "/" + d.files_total : "") +
              (d.total_bytes ? " · " + bytes(d.bytes_downloaded) + " / " + bytes(d.total_bytes) : "");
          } else if (message.type === "status" || message.type === "error") {
            $("#download-status").textContent = d.status + (d.error ? ": " + d.error : "");
            if (d.status === "completed") $("#download-progress").value = 100;
            if (TERMINAL.includes(d.status)) await refresh();
          }
        });
      } catch (err) {
        flash(err.message);
      }
    });
    await refresh();
  };

  pages.playground = function () {
    const kind = $("#task-kind");
    const sync = () => {
      $("#task-context").hidden = kind.value !== "qa";
      $("#task-text-label").textContent = kind.value === "qa" ? "Question" : kind.value === "generation" ? "Prompt" : "Text";
    };
    kind.addEventListener("change", sync);
    sync();
    $("#task-form").addEventListener("submit", async (e) => {
      e.preventDefault();
      const f = fields(e.target);
      const bodyFor = {
        qa: { question: f.text, context: f.context },
        generation: { prompt: f.text },
      };
      const payload = Object.assign(bodyFor[f.task] || { text: f.text }, f.model_name ? { model_name: f.model_name } : {});
      $("#task-result").textContent = "…";
      try {
        let result = await api("POST", "/api/tasks/" + f.task, { json: payload });
        // A task the worker is still starting answers pending: follow it.
        for (let i = 0; result && result.status === "pending" && result.task_id && i < 120; i++) {
          await new Promise((r) => setTimeout(r, 1000));
          result = await api("GET", "/api/tasks/" + result.task_id);
        }
        $("#task-result").textContent = JSON.stringify(result, null, 2);
      } catch (err) {
        $("#task-result").textContent = "";
        flash(err.message);
      }
    });
  };

  pages.keys = async function () {
    const refresh = async () => {
      const keys = items(await api("GET", "/api/apikeys"));
      fill(
        $("#keys-table"),
        keys.map((k) =>
          el("tr", {}, el("td", {}, k.name), el("td", { className: "mono" }, k.key), el("td", { className: "mono" }, k.model_id || ""),
            el("td", {}, when(k.created_at)), el("td", {}, when(k.last_used_at)),
            el("td", {}, el("button", { className: "small danger", onclick: async () => {
              try { await api("DELETE", "/api/apikeys/" + k.id); await refresh(); } catch (err) { flash(err.message); }
            } }, "Revoke")))
        )
      );
    };
    $("#key-form").addEventListener("submit", async (e) => {
      e.preventDefault();
      try {
        const created = await api("POST", "/api/apikeys", { json: fields(e.target) });
        const shown = $("#key-created");
        shown.hidden = false;
        shown.textContent = "Your new key (shown once): " + created.key;
        e.target.reset();
        await refresh();
      } catch (err) {
        flash(err.message);
      }
    });
    await refresh();
  };

  pages.webhooks = async function () {
    const showDeliveries = async (hook) => {
      $("#deliveries").hidden = false;
      $("#deliveries-of").textContent = hook.url;
      const deliveries = items(await api("GET", "/api/webhooks/" + hook.id + "/deliveries?limit=50"));
      fill(
        $("#deliveries-table"),
        deliveries.map((d) =>
          el("tr", {}, el("td", {}, d.event), el("td", {}, statusCell(d.status)), el("td", {}, num(d.attempts)),
            el("td", {}, d.last_status_code ?? d.last_error ?? ""), el("td", {}, when(d.delivered_at || d.created_at)))
        )
      );
    };
    const refresh = async () => {
      const hooks = items(await api("GET", "/api/webhooks"));
      fill(
        $("#hooks-table"),
        hooks.map((h) =>
          el("tr", {}, el("td", { className: "mono" }, h.url), el("td", {}, (h.events || []).join(", ")), el("td", {}, when(h.created_at)),
            el("td", {},
              el("button", { className: "small", onclick: () => showDeliveries(h) }, "Deliveries"), " ",
              el("button", { className: "small", onclick: async () => {
                try { await api("POST", "/api/webhooks/" + h.id + "/test"); await showDeliveries(h); } catch (err) { flash(err.message); }
              } }, "Test"), " ",
              el("button", { className: "small danger", onclick: async () => {
                try { await api("DELETE", "/api/webhooks/" + h.id); await refresh(); } catch (err) { flash(err.message); }
              } }, "Delete")))
        )
      );
    };
    $("#hook-form").addEventListener("submit", async (e) => {
      e.preventDefault();
      const f = fields(e.target);
      try {
        const created = await api("POST", "/api/webhooks", {
          json: { url: f.url, events: f.events.split(",").map((s) => s.trim()).filter(Boolean) },
        });
        const shown = $("#hook-created");
        shown.hidden = false;
        shown.textContent = "Signing secret (shown once): " + created.secret;
        e.target.reset();
        await refresh();
      } catch (err) {
        flash(err.message);
      }
    });
    await refresh();
  };

  /* Vega-Lite specs of a message (one spec, or a list), rendered into `into`. */
  function renderCharts(charts, into) {
    const specs = Array.isArray(charts) ? charts : charts && typeof charts === "object" ? [charts] : [];
    for (const spec of specs) {
      if (!spec || !(spec.mark || spec.layer || spec.vconcat || spec.hconcat || spec.$schema)) continue;
      const box = el("div", { className: "chart" });
      into.append(box);
      if (window.vegaEmbed) {
        window.vegaEmbed(box, Object.assign({ width: "container" }, spec), { actions: false, renderer: "svg" })
          .catch((err) => box.append(el("p", { className: "muted" }, "chart: " + err.message)));
      }
    }
  }

  pages.chats = async function () {
    const datasets = items(await api("GET", "/api/datasets?limit=100")).filter((d) => d.status === "ready");
    const names = Object.fromEntries(datasets.map((d) => [d.id, d.name]));
    $("#chat-dataset").append(...datasets.map((d) => el("option", { value: d.id }, d.name)));
    $("#chat-form").addEventListener("submit", async (e) => {
      e.preventDefault();
      const f = fields(e.target);
      try {
        const chat = await api("POST", "/api/chats", { json: { title: f.title, dataset_id: f.dataset_id || null } });
        location.href = ROOT + "/console/chats/" + (chat.id || chat._id);
      } catch (err) {
        flash(err.message);
      }
    });
    const chats = items(await api("GET", "/api/chats?limit=100"));
    fill(
      $("#chats-table"),
      chats.map((c) => {
        const id = c.id || c._id;
        return el("tr", {},
          el("td", {}, el("a", { href: ROOT + "/console/chats/" + id }, c.title)),
          el("td", {}, names[c.dataset_id] || c.dataset_id || ""),
          el("td", {}, when(c.last_updated)),
          el("td", {}, el("button", { className: "small danger", onclick: async () => {
            try { await api("DELETE", "/api/chats/" + id); location.reload(); } catch (err) { flash(err.message); }
          } }, "Delete")));
      })
    );
  };

  pages.chat = async function () {
    const id = ITEM;
    const chat = await api("GET", "/api/chats/" + id);
    document.querySelector("h1").firstChild.textContent = chat.title + " ";
    const list = $("#chat-messages");
    const bubble = (m) => {
      const node = el("div", { className: "msg " + (m.role === "user" ? "user" : "assistant"), "data-id": m.id || m._id || "" });
      node.append(el("div", { className: "text" }, m.content || ""));
      renderCharts(m.charts, node);
      if (m.query) node.append(el("details", {}, el("summary", {}, "How this was computed"), el("pre", { className: "mono" }, JSON.stringify(m.query, null, 2))));
      return node;
    };
    const shown = new Set();
    const show = (m) => {
      const key = m.id || m._id;
      if (key && shown.has(key)) return null;
      if (key) shown.add(key);
      const node = bubble(m);
      list.append(node);
      list.scrollTop = list.scrollHeight;
      return node;
    };
    for (let offset = 0; ; offset += 100) {
      const page = items(await api("GET", "/api/messages/chat/" + id + "?limit=100&offset=" + offset));
      page.forEach(show);
      if (page.length < 100) break;
    }
    // Replies stream in as tokens over the WebSocket (following the chat), then arrive whole.
    const pending = new Map(); // user message id -> the assistant bubble being written
    const answered = new Set(); // user message ids whose reply is shown
    let socket = null;
    try {
      socket = new WebSocket(websocketUrl(id), ["bearer", token()]);
      socket.onmessage = (e) => {
        const message = JSON.parse(e.data);
        const d = message.data || {};
        if (message.type === "chat_token") {
          let node = pending.get(d.reply_to);
          if (!node) {
            node = el("div", { className: "msg assistant streaming" }, el("div", { className: "text" }, ""));
            list.append(node);
            pending.set(d.reply_to, node);
          }
          node.querySelector(".text").textContent += d.token || "";
          list.scrollTop = list.scrollHeight;
        } else if (message.type === "chat_message") {
          if (d.reply_to) answered.add(d.reply_to);
          const node = pending.get(d.reply_to);
          pending.delete(d.reply_to);
          const final = bubble(d);
          shown.add(d.id || d._id);
          if (node) node.replaceWith(final);
          else list.append(final);
          list.scrollTop = list.scrollHeight;
          $("#ask-submit").disabled = false;
        }
      };
    } catch (e) {
      socket = null;
    }
    $("#ask-form").addEventListener("submit", async (e) => {
      e.preventDefault();
      const content = $("#ask-content").value.trim();
      if (!content) return;
      $("#ask-submit").disabled = true;
      try {
        const posted = await api("POST", "/api/messages", { json: { chat_id: id, role: "user", content } });
        show(posted);
        $("#ask-content").value = "";
        // Without a live socket (or if it missed the reply), poll for the answer.
        const asked = posted.id || posted._id;
        for (let i = 0; i < 300; i++) {
          await new Promise((r) => setTimeout(r, socket && socket.readyState === 1 ? 3000 : 1000));
          if (answered.has(asked)) break;
          const all = items(await api("GET", "/api/messages/chat/" + id + "?limit=1000"));
          const reply = all.find((m) => m.role === "assistant" && m.reply_to === asked);
          if (reply) {
            answered.add(asked);
            const node = pending.get(asked);
            pending.delete(asked);
            if (!shown.has(reply.id || reply._id)) {
              const final = bubble(reply);
              shown.add(reply.id || reply._id);
              if (node) node.replaceWith(final);
              else list.append(final);
            }
            break;
          }
        }
      } catch (err) {
        flash(err.message);
      } finally {
        $("#ask-submit").disabled = false;
      }
    });
  };

  pages.media = async function () {
    const GALLERY_KEY = "stratus.media";
    let models = [];
    try { models = items(await api("GET", "/api/text-to-image/models")); } catch (e) { /* optional */ }
    $("#media-model").replaceChildren(...models.map((m) => el("option", { value: m.id }, m.name || m.id)));
    const gallery = $("#gallery");
    const remembered = () => JSON.parse(localStorage.getItem(GALLERY_KEY) || "[]");
    const addToGallery = (status, prompt) => {
      const url = status.image_url || status.video_url;
      if (!url) return;
      const media = status.video_url ? el("video", { src: url, controls: "", muted: "" }) : el("img", { src: url, alt: prompt });
      gallery.prepend(el("figure", { "data-task": status.task_id }, media, el("figcaption", {}, prompt)));
    };
    // Outputs are served by short-lived signed URLs: read each remembered task's status again.
    for (const item of remembered().slice(0, 24)) {
      try { addToGallery(await api("GET", "/api/" + item.kind + "/status/" + item.task_id), item.prompt); } catch (e) { /* gone */ }
    }
    $("#media-form").addEventListener("submit", async (e) => {
      e.preventDefault();
      const f = fields(e.target);
      const body = { prompt: f.prompt };
      for (const k of ["width", "height", "num_inference_steps", "seed"]) if (f[k]) body[k] = Number(f[k]);
      if (f.negative_prompt) body.negative_prompt = f.negative_prompt;
      if (f.model_id) body.model_id = f.model_id;
      try {
        const started = await api("POST", "/api/text-to-image/generate", {
          json: body,
          headers: { "Idempotency-Key": crypto.randomUUID ? crypto.randomUUID() : String(Date.now()) },
        });
        const taskId = started.task_id;
        localStorage.setItem(GALLERY_KEY, JSON.stringify([{ task_id: taskId, kind: "text-to-image", prompt: f.prompt }, ...remembered()].slice(0, 50)));
        $("#media-live").hidden = false;
        $("#media-progress").value = 0;
        $("#media-preview").hidden = true;
        const finish = async () => {
          const status = await api("GET", "/api/text-to-image/status/" + taskId);
          $("#media-progress").value = status.progress || 0;
          if (status.status === "completed") {
            addToGallery(status, f.prompt);
            $("#media-live").hidden = true;
          } else if (TERMINAL.includes(status.status)) {
            flash("Generation " + status.status + (status.error ? ": " + status.error : ""));
          }
        };
        if (TERMINAL.includes(started.status)) return finish();
        follow(taskId, async (message) => {
          const d = message.data || {};
          if (message.type === "progress") {
            $("#media-progress").value = d.progress || 0;
            const step = d.step ?? d.current_step;
            const total = d.total ?? d.total_steps;
            $("#media-step").textContent = step != null && total ? "step " + step + " / " + total + (d.eta_s != null ? " · " + Math.round(d.eta_s) + " s left" : "") : "";
            const preview = d.preview || d.preview_url;
            if (preview) {
              $("#media-preview").src = preview.startsWith("data:") || preview.startsWith("http") || preview.startsWith("/") ? preview : "data:image/png;base64," + preview;
              $("#media-preview").hidden = false;
            }
          } else if (message.type === "status" || message.type === "error") {
            if (TERMINAL.includes(d.status)) await finish();
          }
        });
      } catch (err) {
        flash(err.message);
      }
    });
  };

  /* ------------------------------------------------------------------ start ---- */
  const signout = $("#signout");
  if (signout) {
    signout.addEventListener("click", async () => {
      try { await api("POST", "/api/auth/logout", { json: {} }); } catch (e) { /* the token may be an API key */ }
      localStorage.removeItem(TOKEN_KEY);
      location.href = ROOT + "/console/signin";
    });
  }
  const detail = { jobs: "job", datasets: "dataset", chats: "chat" };
  const name = ITEM ? detail[PAGE] : PAGE;
  if (name !== "signin" && !token()) {
    location.href = ROOT + "/console/signin?next=" + encodeURIComponent(location.pathname);
    return;
  }
  if (pages[name]) {
    Promise.resolve(pages[name]()).then(
      () => body.setAttribute("data-ready", "true"),
      (err) => { flash(err.message); body.setAttribute("data-ready", "error"); }
    );
  }
})();
