// The operator dashboard: signs in with e-mail and password (GoTrue's password grant), then
// reads the admin API of this same origin. Data is put on the page with textContent and SVG
// attributes only, never as HTML.
"use strict";

const ANON_KEY = document.querySelector('meta[name="pb-anon-key"]').content;
const SVG = "http://www.w3.org/2000/svg";
const $ = (id) => document.getElementById(id);

let session = JSON.parse(sessionStorage.getItem("pb-operator-session") || "null");

async function api(path, options = {}) {
  const headers = { apikey: ANON_KEY, "Content-Type": "application/json" };
  if (session) headers.Authorization = `Bearer ${session.access_token}`;
  const response = await fetch(path, { ...options, headers });
  const body = await response.json().catch(() => ({}));
  if (!response.ok) {
    const error = new Error(body.error || body.msg || body.error_description || response.statusText);
    error.status = response.status;
    throw error;
  }
  return body;
}

function show(signedIn) {
  $("sign-in").hidden = signedIn;
  $("dashboard").hidden = !signedIn;
  $("sign-out").hidden = !signedIn;
}

function fail(error) {
  if (error.status === 403) {
    $("message").textContent = "This account is not an operator.";
    signOut(false);
  } else if (error.status === 401) {
    $("message").textContent = "Your session has ended: sign in again.";
    signOut(false);
  } else {
    $("message").textContent = `Error: ${error.message}`;
  }
}

function signOut(clearMessage = true) {
  session = null;
  sessionStorage.removeItem("pb-operator-session");
  if (clearMessage) $("message").textContent = "";
  show(false);
}

function isoDay(date) {
  return date.toISOString().slice(0, 10);
}

function addDays(day, n) {
  const date = new Date(`${day}T00:00:00Z`);
  date.setUTCDate(date.getUTCDate() + n);
  return isoDay(date);
}

function percent(value) {
  return value === null || value === undefined ? "n/a" : `${(value * 100).toFixed(1)}%`;
}

function seconds(value) {
  return value === null || value === undefined ? "–" : `${(value * 1000).toFixed(1)} ms`;
}

function fillFigures(list, pairs) {
  list.replaceChildren();
  for (const [label, value, key] of pairs) {
    const box = document.createElement("div");
    const dt = document.createElement("dt");
    const dd = document.createElement("dd");
    dt.textContent = label;
    dd.textContent = String(value);
    if (key) dd.dataset.figure = key;
    box.append(dt, dd);
    list.append(box);
  }
}

// Bars (or a line) over time as inline SVG: the value's label on hover (title).
function chart(container, points, kind) {
  const width = 800, height = 180, pad = 24;
  const svg = document.createElementNS(SVG, "svg");
  svg.setAttribute("viewBox", `0 0 ${width} ${height}`);
  svg.setAttribute("role", "img");
  const max = Math.max(1, ...points.map((p) => p.value));
  const step = (width - 2 * pad) / Math.max(1, points.length);
  const y = (v) => height - pad - (v / max) * (height - 2 * pad);
  const axis = document.createElementNS(SVG, "text");
  axis.setAttribute("x", 2);
  axis.setAttribute("y", pad - 8);
  axis.setAttribute("font-size", "11");
  axis.textContent = `max ${max}`;
  svg.append(axis);
  let line = "";
  points.forEach((p, i) => {
    const x = pad + i * step;
    if (kind === "bars") {
      const bar = document.createElementNS(SVG, "rect");
      bar.setAttribute("x", x + 1);
      bar.setAttribute("width", Math.max(1, step - 2));
      bar.setAttribute("y", y(p.value));
      bar.setAttribute("height", height - pad - y(p.value));
      bar.setAttribute("fill", "#2f6fde");
      const title = document.createElementNS(SVG, "title");
      title.textContent = `${p.label}: ${p.value}`;
      bar.append(title);
      svg.append(bar);
    } else {
      line += `${line ? "L" : "M"}${x + step / 2},${y(p.value)} `;
      const dot = document.createElementNS(SVG, "circle");
      dot.setAttribute("cx", x + step / 2);
      dot.setAttribute("cy", y(p.value));
      dot.setAttribute("r", 3);
      dot.setAttribute("fill", "#1b8a5a");
      const title = document.createElementNS(SVG, "title");
      title.textContent = `${p.label}: ${p.value}`;
      dot.append(title);
      svg.append(dot);
    }
  });
  if (line) {
    const path = document.createElementNS(SVG, "path");
    path.setAttribute("d", line);
    path.setAttribute("fill", "none");
    path.setAttribute("stroke", "#1b8a5a");
    path.setAttribute("stroke-width", "2");
    svg.prepend(path);
  }
  for (const i of [0, points.length - 1]) {
    if (points[i] === undefined) continue;
    const label = document.createElementNS(SVG, "text");
    label.setAttribute("x", pad + i * step);
    label.setAttribute("y", height - 6);
    label.setAttribute("font-size", "11");
    label.textContent = points[i].label;
    svg.append(label);
  }
  container.replaceChildren(svg);
}

async function loadBusiness() {
  const from = $("from").value, to = $("to").value;
  const m = await api(`/functions/v1/admin/metrics?from=${from}&to=${to}`);
  fillFigures($("figures"), [
    ["Tenants", m.tenants.total, "tenants_total"],
    ["Tenants paid", m.tenants.paid, "tenants_paid"],
    ["MRR (RM)", m.mrr, "mrr"],
    ["MAU", m.mau, "mau"],
    ["Retention D1", percent(m.retention.d1), "d1"],
    ["Retention D7", percent(m.retention.d7), "d7"],
    ["Retention D30", percent(m.retention.d30), "d30"],
    ["Churn", percent(m.churn_rate), "churn_rate"],
    ["Free → paid", percent(m.conversion_rate), "conversion_rate"],
  ]);
  chart($("dau-chart"), m.dau.map((d) => ({ label: d.date, value: d.count })), "bars");
  const weeks = [7, 6, 5, 4, 3, 2, 1, 0].map((w) => addDays(to, -7 * w));
  const ends = await Promise.all(
    weeks.map((day) => api(`/functions/v1/admin/metrics?from=${day}&to=${day}`)),
  );
  chart($("mrr-chart"), ends.map((e, i) => ({ label: weeks[i], value: Number(e.mrr) })), "line");
}

async function loadSystem() {
  const h = await api("/functions/v1/admin/health");
  const all = h.requests.all;
  fillFigures($("system"), [
    ["Uptime", `${Math.floor(h.uptime_seconds / 60)} min`, "uptime"],
    ["Pool in use", `${h.pool.in_use} / ${h.pool.max}`, "pool"],
    ["Waiting for a connection", h.pool.waiting, "waiting"],
    ["Requests", all.requests, "requests"],
    ["Error rate (5xx)", percent(all.error_rate), "error_rate"],
    ["p95", seconds(all.p95), "p95"],
  ]);
  const body = $("surfaces").tBodies[0];
  body.replaceChildren();
  for (const s of h.requests.surfaces) {
    const row = body.insertRow();
    for (const v of [s.surface, s.requests, percent(s.error_rate), seconds(s.p50), seconds(s.p95), seconds(s.p99)]) {
      row.insertCell().textContent = String(v);
    }
  }
  const slow = $("slow-queries");
  if (h.slow_queries === null) {
    slow.textContent = "not available (pg_stat_statements is not installed)";
  } else {
    const list = document.createElement("ol");
    for (const q of h.slow_queries) {
      const item = document.createElement("li");
      const code = document.createElement("code");
      code.textContent = q.query;
      item.append(`${q.mean_exec_time.toFixed(1)} ms × ${q.calls}: `, code);
      list.append(item);
    }
    slow.replaceChildren(list);
  }
}

function limitValue(input) {
  return input.value.trim() === "" ? null : Number(input.value);
}

async function loadPlans() {
  const plans = await api("/functions/v1/admin/plans");
  const body = $("plans").tBodies[0];
  body.replaceChildren();
  for (const plan of plans) {
    const row = body.insertRow();
    row.dataset.plan = plan.code;
    row.insertCell().textContent = plan.code;
    const input = (name, value, type = "text") => {
      const el = document.createElement("input");
      el.type = type;
      el.name = name;
      if (type === "checkbox") el.checked = value;
      else el.value = value === null ? "" : String(value);
      row.insertCell().append(el);
      return el;
    };
    const name = input("name", plan.name);
    const price = input("price_monthly", plan.price_monthly);
    const products = input("max_active_products", plan.max_active_products, "number");
    const sales = input("max_sales_per_month", plan.max_sales_per_month, "number");
    const active = input("is_active", plan.is_active, "checkbox");
    const save = document.createElement("button");
    save.type = "button";
    save.textContent = "Save";
    const status = document.createElement("span");
    status.className = "status";
    save.addEventListener("click", async () => {
      status.textContent = "";
      try {
        const saved = await api(`/functions/v1/admin/plans/${encodeURIComponent(plan.code)}`, {
          method: "PATCH",
          // The price travels as a string: exact, as the server keeps it (Decimal).
          body: JSON.stringify({
            name: name.value,
            price_monthly: price.value.trim(),
            max_active_products: limitValue(products),
            max_sales_per_month: limitValue(sales),
            is_active: active.checked,
          }),
        });
        price.value = saved.price_monthly;
        status.textContent = " saved";
      } catch (error) {
        status.textContent = ` ${error.message}`;
        if (error.status === 403 || error.status === 401) fail(error);
      }
    });
    row.insertCell().append(save, status);
  }
}

async function loadAll() {
  try {
    await Promise.all([loadBusiness(), loadSystem(), loadPlans()]);
  } catch (error) {
    fail(error);
  }
}

$("sign-in-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  $("sign-in-error").textContent = "";
  $("message").textContent = "";
  try {
    session = await api("/auth/v1/token?grant_type=password", {
      method: "POST",
      body: JSON.stringify({ email: $("email").value, password: $("password").value }),
    });
  } catch (error) {
    $("sign-in-error").textContent = error.message;
    return;
  }
  sessionStorage.setItem("pb-operator-session", JSON.stringify(session));
  show(true);
  await loadAll();
});

$("range-form").addEventListener("submit", (event) => {
  event.preventDefault();
  loadBusiness().catch(fail);
});

$("sign-out").addEventListener("click", () => signOut());

// The figures count Malaysian days (ops/activity.py): "today" is Kuala Lumpur's date, which is
// tomorrow's UTC date from 16:00 UTC on.
const today = new Intl.DateTimeFormat("en-CA", { timeZone: "Asia/Kuala_Lumpur" }).format(new Date());
$("to").value = today;
$("from").value = addDays(today, -29);
if (session) {
  show(true);
  loadAll();
}
