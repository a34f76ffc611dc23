// The labelling desk page: renders the state the server streams, sends answers.
// Every value from a record goes in through textContent (never innerHTML): records are
// untrusted input from the floor.
// Every change is sent as JSON with the session's CSRF token (from /api/session, which
// no other site's page can read); the session cookie itself is HttpOnly.
"use strict";

const SVG = "http://www.w3.org/2000/svg";
let current = null;   // the card on screen
let busy = false;     // an answer is on its way: ignore further keys
let csrf = "";        // this session's token, sent with every change

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) node.setAttribute(key, value);
  for (const child of children) node.append(child);
  return node;
}

function svg(tag, attrs) {
  const node = document.createElementNS(SVG, tag);
  for (const [key, value] of Object.entries(attrs)) node.setAttribute(key, value);
  return node;
}

function fmt(value) {
  if (value === null || value === undefined) return "—";
  if (typeof value !== "number") return String(value);
  return Math.abs(value) >= 1e5 || (value !== 0 && Math.abs(value) < 1e-3)
    ? value.toExponential(3) : String(+value.toPrecision(6));
}

function age(seconds) {
  const s = Math.max(0, Math.round(seconds));
  if (s < 90) return `${s} s`;
  if (s < 5400) return `${Math.round(s / 60)} min`;
  return `${(s / 3600).toFixed(1)} h`;
}

function table(rows, numeric) {
  const body = el("tbody");
  for (const [name, value] of rows) {
    const cell = el("td", { class: numeric ? (value === null ? "missing" : "num") : "" }, fmt(value));
    body.append(el("tr", {}, el("td", {}, name), cell));
  }
  return el("table", {}, body);
}

function bars(card) {
  const box = el("div", { class: "proba" });
  for (const [name, p] of card.proba) {
    const fill = el("div", { class: "fill", style: `width:${(100 * p).toFixed(1)}%` });
    const row = el("div", { class: "bar" + (name === card.predicted ? " predicted" : "") },
      el("span", { class: "name" }, name), el("div", { class: "track" }, fill),
      el("span", { class: "num" }, p.toFixed(3)));
    box.append(row);
  }
  return box;
}

function waferMap(map) {
  // The product's die grid as far as the desk has seen it, as a round wafer: faint dies,
  // the other queried dies of this wafer in amber, this die in red.
  const cx = (map.min_x + map.max_x + 1) / 2, cy = (map.min_y + map.max_y + 1) / 2;
  // Dies seen so far may not span the wafer, or may sit in a corner of their extent:
  // the circle grows to hold every one of them.
  const far = [[map.x, map.y], ...map.others].map(([x, y]) => Math.hypot(x + .5 - cx, y + .5 - cy) + .75);
  const r = Math.max((Math.max(map.max_x - map.min_x, map.max_y - map.min_y) + 1) / 2 + .5, 2, ...far);
  const box = svg("svg", { class: "wafer", viewBox: `${cx - r - .5} ${cy - r - .5} ${2 * r + 1} ${2 * r + 1}`,
    role: "img", "aria-label": `die ${map.x}, ${map.y} on the wafer` });
  box.append(svg("circle", { cx, cy, r, fill: "#f9fafb", stroke: "#98a2b3", "stroke-width": .15 }));
  if (2 * r <= 120) {
    for (let x = Math.floor(cx - r); x < cx + r; x++) {
      for (let y = Math.floor(cy - r); y < cy + r; y++) {
        if (Math.hypot(x + .5 - cx, y + .5 - cy) <= r - .5) {
          box.append(svg("rect", { x: x + .06, y: y + .06, width: .88, height: .88, fill: "#e4e7ec" }));
        }
      }
    }
  }
  for (const [x, y] of map.others) {
    box.append(svg("rect", { x: x + .06, y: y + .06, width: .88, height: .88, fill: "#f5b83d" }));
  }
  box.append(svg("rect", { x: map.x - .1, y: map.y - .1, width: 1.2, height: 1.2, fill: "#d92d20",
    class: "here" }));
  return box;
}

function answerButtons(card) {
  const row = el("div", { class: "answers" });
  card.classes.forEach((name, i) => {
    const attrs = { class: "class-btn", type: "button", "data-label": name };
    const button = el("button", attrs);
    if (i < 9) button.append(el("kbd", {}, String(i + 1)));
    button.append(name);
    button.addEventListener("click", () => send(name));
    row.append(button);
  });
  const input = el("input", { id: "new-class", placeholder: "new class (n)", maxlength: "256",
    "aria-label": "new class" });
  input.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && input.value.trim()) send(input.value.trim());
    if (event.key === "Escape") input.blur();
  });
  const add = el("button", { type: "button", id: "new-class-send" }, "add");
  add.addEventListener("click", () => input.value.trim() && send(input.value.trim()));
  const skip = el("button", { type: "button", id: "skip" }, el("kbd", {}, "s"), "skip");
  skip.addEventListener("click", skipCard);
  row.append(input, add, skip);
  return row;
}

function renderCard(card) {
  const area = document.getElementById("card-area");
  const open = current && card && current.query_id === card.query_id;
  const typing = document.activeElement && document.activeElement.id === "new-class";
  const typed = typing ? document.activeElement.value : "";
  current = card;
  if (!card) {
    area.replaceChildren(el("p", { class: "empty" }, "Nothing to label. New queries appear here."));
    return;
  }
  const title = el("h1", {}, el("span", { class: `badge ${card.reason}` }, card.reason), ` ${card.model_key}`);
  const meta = el("p", { class: "meta" },
    `uncertainty ${card.uncertainty.toFixed(3)} (threshold ${fmt(card.threshold)}) · predicted `,
    el("strong", {}, card.predicted ?? "—"),
    ` · asked ${age(card.age_s)} ago · expires in ${age(card.expires_in_s)} · ${card.query_id}`);
  const right = el("div", {}, el("h2", {}, "Model"), bars(card));
  if (card.wafer_map) right.append(el("h2", {}, "Wafer"), waferMap(card.wafer_map));
  const panels = el("div", { class: "panels" },
    el("div", {}, el("h2", {}, "Record"), table(card.fields, false)),
    el("div", { class: "measurements" }, el("h2", {}, "Measurements"), table(card.measurements, true)),
    right);
  const box = el("article", { class: "card", id: "card", "data-query-id": card.query_id },
    title, meta, panels, answerButtons(card));
  area.replaceChildren(box);
  if (open && typing) {  // a live update must not eat what is being typed
    const input = document.getElementById("new-class");
    input.value = typed;
    input.focus();
  }
}

function renderQueue(state) {
  const list = document.getElementById("queue");
  list.replaceChildren(...state.queue.map((q) => el("li", { "data-query-id": q.query_id, title: q.query_id },
    el("span", { class: `badge ${q.reason}` }, q.reason), el("span", {}, q.model_key),
    el("span", { class: "u" }, `${q.uncertainty.toFixed(2)} · ${age(q.age_s)}`))));
  document.getElementById("queue-size").textContent = `(${state.queue_size})`;
}

function renderStatus(state) {
  const s = state.status;
  const parts = [s.caught_up ? `${s.open} open` : "reading the topics…",
    `${s.claimed_by_others} with others`, `${s.labelled_here} labelled here`,
    `${s.answered_elsewhere} answered elsewhere`, `${s.expired} expired`];
  if (s.malformed_requests) parts.push(`${s.malformed_requests} malformed requests skipped`);
  if (s.malformed_labels) parts.push(`${s.malformed_labels} malformed labels`);
  if (s.problem) parts.push(s.problem);
  const status = document.getElementById("status");
  status.textContent = parts.join(" · ");
  status.classList.toggle("problem", Boolean(s.problem));
  document.getElementById("who").textContent = `labelling as ${state.labeler}`;
}

function render(state) {
  renderCard(state.card);
  renderQueue(state);
  renderStatus(state);
}

function toast(message, isError) {
  const box = document.getElementById("toast");
  box.textContent = message;
  box.classList.toggle("error", isError);
  box.hidden = false;
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => { box.hidden = true; }, isError ? 6000 : 2500);
}

function toLogin(response) {
  // The session ended (expired, logged out elsewhere, account removed): log in again.
  if (response.status === 401) location.assign("/");
  return response.status === 401;
}

async function post(path, body) {
  const response = await fetch(path, { method: "POST",
    headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf },
    body: JSON.stringify(body) });
  toLogin(response);
  return [response.ok, await response.json()];
}

async function refresh() {
  const response = await fetch("/api/state");
  if (response.ok) render(await response.json());
  else toLogin(response);
}

async function send(label) {
  if (!current || busy) return;
  busy = true;
  try {
    const [ok, reply] = await post("/api/label", { query_id: current.query_id, label });
    toast(ok ? `${reply.query_id}: labelled ${reply.label}` : reply.error, !ok);
    await refresh();
  } catch (error) {
    toast(`not sent: ${error}`, true);
  } finally {
    busy = false;
  }
}

async function skipCard() {
  if (!current || busy) return;
  busy = true;
  try {
    await post("/api/skip", { query_id: current.query_id });
    await refresh();
  } finally {
    busy = false;
  }
}

document.addEventListener("keydown", (event) => {
  if (event.target.tagName === "INPUT" || event.ctrlKey || event.metaKey || event.altKey) return;
  if (!current) return;
  if (/^[1-9]$/.test(event.key)) {
    const name = current.classes[Number(event.key) - 1];
    if (name !== undefined) send(name);
  } else if (event.key === "n") {
    event.preventDefault();
    document.getElementById("new-class").focus();
  } else if (event.key === "s") {
    skipCard();
  }
});

async function logOut() {
  const [ok, reply] = await post("/logout", {});
  if (ok) location.assign(reply.next);
}

async function start() {
  const response = await fetch("/api/session");
  if (toLogin(response) || !response.ok) return;
  const session = await response.json();
  csrf = session.csrf;
  document.getElementById("who").textContent = `labelling as ${session.labeler}`;
  const logout = document.getElementById("logout");
  logout.hidden = !session.logs_in;  // with a fixed name or a proxy, there is no logging out
  logout.addEventListener("click", logOut);
  const events = new EventSource("/api/events");
  events.onmessage = (event) => render(JSON.parse(event.data));
  events.onerror = () => {
    document.getElementById("status").textContent = "connection lost: reconnecting…";
    fetch("/api/session").then(toLogin, () => {});  // refused because the session ended?
  };
}

start();
