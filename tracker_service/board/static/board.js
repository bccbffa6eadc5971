// The board's only script (the Content-Security-Policy allows no other): writes through the
// REST API with the session's CSRF token, live updates from /events, lease countdowns, sign-out.
"use strict";

const csrf = () => document.querySelector('meta[name="csrf-token"]').content;

function toast(text, isError) {
  const el = document.getElementById("toast");
  el.textContent = text;
  el.className = isError ? "error" : "";
  el.hidden = false;
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => { el.hidden = true; }, isError ? 8000 : 2500);
}

async function api(method, path, body) {
  const headers = { "X-CSRF-Token": csrf(), "Accept": "application/json" };
  const init = { method, headers, credentials: "same-origin" };
  if (body !== undefined) {
    headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const resp = await fetch(path, init);
  const text = await resp.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch (e) { data = null; }
  if (resp.status === 401) { location.assign("/board/signin"); }
  if (!resp.ok) {
    const detail = data && data.detail ? data.detail : (resp.status + " " + resp.statusText);
    const err = new Error(detail);
    err.problem = data;
    throw err;
  }
  return data;
}

// What a field held when the page drew it: an edit form sends only what the person changed, so
// a stale form cannot undo what an agent changed meanwhile.
function initial(el) {
  if (el.tagName === "SELECT") {
    const chosen = Array.from(el.options).find((o) => o.defaultSelected) || el.options[0];
    return chosen ? chosen.value : "";
  }
  return el.defaultValue;
}

// A form's fields as the API's JSON: data-kind="list" (comma separated), "bool"; empty fields are
// left out unless data-null-if-empty (null: clear it) or data-keep-empty (an empty list). Fields
// are trimmed (names refuse edge whitespace), but for markdown in a textarea.
function formBody(form, submitter) {
  const body = {};
  const changedOnly = form.hasAttribute("data-changed-only");
  for (const el of form.elements) {
    if (!el.name || el.type === "submit" || el.disabled) continue;
    if (changedOnly && el.value === initial(el)) continue;
    const raw = el.tagName === "TEXTAREA" ? el.value : el.value.trim();
    if (raw.trim() === "") {
      if (el.hasAttribute("data-null-if-empty")) body[el.name] = null;
      else if (el.hasAttribute("data-keep-empty") && el.dataset.kind === "list") body[el.name] = [];
      continue;
    }
    if (el.dataset.kind === "list") body[el.name] = raw.split(",").map((s) => s.trim()).filter(Boolean);
    else if (el.dataset.kind === "bool") body[el.name] = raw === "true";
    else body[el.name] = raw;
  }
  if (submitter && submitter.name) body[submitter.name] = submitter.value;
  if (form.dataset.notes) {
    const notes = document.querySelector(form.dataset.notes);
    if (notes && notes.value.trim()) body[notes.name] = notes.value;
  }
  return body;
}

// A form's last error, kept across live refreshes (which replace the form) until it is sent again.
const errors = new Map();
function showErrors() {
  for (const form of document.querySelectorAll("form[data-api]")) {
    const message = errors.get(form.dataset.api);
    const el = form.querySelector(".form-error");
    if (message && el) { el.textContent = message; el.hidden = false; }
  }
}

document.addEventListener("submit", async (event) => {
  const form = event.target;
  if (!form.dataset.api) return;
  event.preventDefault();
  const [method, path] = form.dataset.api.split(" ");
  const error = form.querySelector(".form-error");
  errors.delete(form.dataset.api);
  if (error) { error.hidden = true; error.textContent = ""; }
  const body = formBody(form, event.submitter);
  if (form.hasAttribute("data-changed-only") && Object.keys(body).length === 0) { toast("Nothing changed", false); return; }
  const buttons = form.querySelectorAll("button");
  buttons.forEach((b) => { b.disabled = true; });
  try {
    const data = await api(method, path, body);
    const then = form.dataset.then || "refresh";
    if (then === "go-task" && data && data.key) { location.assign("/board/tasks/" + encodeURIComponent(data.key)); return; }
    if (then === "go-thread" && data && data.id) { location.assign("/board/handoffs/" + encodeURIComponent(data.id)); return; }
    if (then === "reload") { location.reload(); return; }  // an edit form drawn again with what is stored now
    if (form.dataset.notes) { const n = document.querySelector(form.dataset.notes); if (n) n.value = ""; }
    if (form.hasAttribute("data-clear")) form.querySelectorAll("textarea").forEach((t) => { t.value = ""; });
    toast("Saved", false);
    await refresh(true);
  } catch (e) {
    errors.set(form.dataset.api, e.message);
    // A live refresh may have replaced the form while the request ran: show it on the one in the page.
    if (error) { error.textContent = e.message; error.hidden = false; }
    showErrors();
    toast(e.message, true);
  } finally {
    buttons.forEach((b) => { b.disabled = false; });
  }
});

// Live: swap in the page's [data-live] parts as the server renders them now, except a part the
// person is typing in (it is updated once they leave it).
function busy(region) {
  const active = document.activeElement;
  if (active && region.contains(active) && active.matches("input, textarea, select")) return true;
  return Array.from(region.querySelectorAll("textarea")).some((t) => t.value.trim() !== "");
}

let refreshing = false;
let again = false;
async function refresh(force) {
  if (refreshing) { again = true; return; }
  refreshing = true;
  try {
    const resp = await fetch(location.href, { credentials: "same-origin", headers: { "Accept": "text/html" } });
    if (resp.redirected && new URL(resp.url).pathname === "/board/signin") { location.assign("/board/signin"); return; }
    if (!resp.ok) return;
    const fresh = new DOMParser().parseFromString(await resp.text(), "text/html");
    for (const region of document.querySelectorAll("[data-live][id]")) {
      const next = fresh.getElementById(region.id);
      if (!next || (!force && busy(region))) continue;
      if (region.innerHTML !== next.innerHTML) region.replaceChildren(...Array.from(next.childNodes).map((n) => document.adoptNode(n)));
    }
    countdowns();
    showErrors();
    document.body.dataset.refreshed = String(Date.now());
  } finally {
    refreshing = false;
    if (again) { again = false; setTimeout(() => refresh(false), 50); }
  }
}

// At most one refresh per 400 ms however busy the agents are, and each within half a second
// of the event that asked for it.
let pending = null;
let lastRefresh = 0;
function scheduleRefresh() {
  if (pending) return;
  const wait = Math.max(100, lastRefresh + 400 - Date.now());
  pending = setTimeout(() => { pending = null; lastRefresh = Date.now(); refresh(false); }, wait);
}

function follow() {
  const types = (document.body.dataset.liveEvents || "").split(" ").filter(Boolean);
  if (!types.length || !window.EventSource) return;
  const dot = document.getElementById("live-state");
  const source = new EventSource("/events");
  // Changes made between this page being rendered and the stream opening: one refresh catches them.
  source.onopen = () => { if (dot) dot.className = "live-dot on"; scheduleRefresh(); };
  source.onerror = () => { if (dot) dot.className = "live-dot"; };
  for (const type of types) source.addEventListener(type, scheduleRefresh);
  source.addEventListener("revoked", () => { source.close(); location.assign("/board/signin"); });
}

function countdowns() {
  const now = Date.now();
  for (const el of document.querySelectorAll("[data-countdown]")) {
    const left = Math.round((Date.parse(el.dataset.countdown) - now) / 1000);
    if (Number.isNaN(left)) continue;
    if (left <= 0) { el.textContent = "lease lapsed"; el.classList.add("lapsed"); continue; }
    const m = Math.floor(left / 60), s = left % 60;
    el.textContent = "lease " + (m ? m + "m " : "") + s + "s";
  }
}

document.addEventListener("DOMContentLoaded", () => {
  const signout = document.getElementById("signout");
  if (signout) {
    signout.addEventListener("click", async () => {
      try { await api("POST", "/board/signout"); } catch (e) { /* the session is gone either way */ }
      location.assign("/board/signin");
    });
  }
  countdowns();
  setInterval(countdowns, 1000);
  follow();
});
