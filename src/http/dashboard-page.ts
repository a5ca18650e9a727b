/**
 * The dashboard page, shipped inside the package as one string so every runtime serves it without
 * reading files (src/ does no IO) and the page needs no network beyond the members (no CDN).
 *
 * The page reads `GET /dashboard/events` of every member it learns of from the membership, not
 * only of the member that served it, so it keeps working when that member dies. A member whose
 * stream failed, or sent nothing for STALE_MS, is drawn unreachable.
 *
 * Each member's element carries `data-member="<id>"`, `data-role="<leader|follower|candidate|
 * learner|unreachable>"` and an aria-label, for scripts and assistive technology.
 *
 * The script is plain browser JavaScript in a raw string: no template literals inside it (this
 * file's own template delimits it), and it must not contain a closing script tag.
 */
import { UPLOT_CSS, UPLOT_JS } from "./vendor/uplot.ts";

const SCRIPT = String.raw`
"use strict";
var STALE_MS = 2000;
var RETRY_MS = 1000;
var SVG_NS = "http://www.w3.org/2000/svg";

/** url -> {url, id, status, seen, up, controller} */
var conns = new Map();
/** id -> latest status from that member's own stream */
var statusById = new Map();
var events = [];
/** A recording to play instead of live streams (dashboard-replay.ts), and the time it is at. */
var REPLAY = window.MESHRAFT_REPLAY || null;
var replayT = 0;
function now() { return REPLAY ? replayT : Date.now(); }
var tokens = { api: sessionStorage.getItem("meshraft-token") || "", admin: sessionStorage.getItem("meshraft-admin-token") || "" };

// #token=...&admin=... fills the token fields once, then leaves the address bar.
(function readHash() {
  if (!location.hash) return;
  var p = new URLSearchParams(location.hash.slice(1));
  if (p.has("token")) tokens.api = p.get("token");
  if (p.has("admin")) tokens.admin = p.get("admin");
  sessionStorage.setItem("meshraft-token", tokens.api);
  sessionStorage.setItem("meshraft-admin-token", tokens.admin);
  history.replaceState(null, "", location.pathname + location.search);
})();

function el(tag, attrs, text) {
  var e = document.createElement(tag);
  for (var k in attrs || {}) e.setAttribute(k, attrs[k]);
  if (text !== undefined) e.textContent = String(text);
  return e;
}
function svg(tag, attrs, text) {
  var e = document.createElementNS(SVG_NS, tag);
  for (var k in attrs || {}) e.setAttribute(k, attrs[k]);
  if (text !== undefined) e.textContent = String(text);
  return e;
}
function bytesText(n) {
  return n < 1024 ? n + " B" : n < 1048576 ? (n / 1024).toFixed(1) + " KiB" : (n / 1048576).toFixed(1) + " MiB";
}

function authHeaders(token) {
  return token ? { Authorization: "Bearer " + token } : {};
}

function connect(url) {
  url = url.replace(/\/+$/, "");
  if (conns.has(url)) return;
  var conn = { url: url, id: null, status: null, seen: 0, up: false, controller: null, problem: "" };
  conns.set(url, conn);
  run(conn);
}

/** Reads one member's event stream until it fails, then tries again after RETRY_MS. */
function run(conn) {
  var controller = new AbortController();
  conn.controller = controller;
  fetch(conn.url + "/dashboard/events", { headers: authHeaders(tokens.api), signal: controller.signal, cache: "no-store" })
    .then(function (res) {
      if (!res.ok || !res.body) {
        conn.problem = "HTTP " + res.status + (res.status === 401 ? ": set the API token" : "");
        throw new Error(conn.problem);
      }
      conn.problem = "";
      var reader = res.body.getReader();
      var decoder = new TextDecoder();
      var buffer = "";
      function pump() {
        return reader.read().then(function (r) {
          if (r.done) throw new Error("stream ended");
          buffer += decoder.decode(r.value, { stream: true });
          var at;
          while ((at = buffer.indexOf("\n\n")) >= 0) {
            onFrame(conn, buffer.slice(0, at));
            buffer = buffer.slice(at + 2);
          }
          return pump();
        });
      }
      return pump();
    })
    .catch(function (err) {
      if (!conn.problem) conn.problem = "unreachable";
    })
    .then(function () {
      conn.up = false;
      // Retry members still in the configuration (and the page's own origin); forget the rest.
      if (conns.get(conn.url) === conn && !stillMember(conn.url)) {
        conns.delete(conn.url);
        statusById.forEach(function (e, id) { if (e.conn === conn) statusById.delete(id); });
      }
      if (conns.get(conn.url) === conn) setTimeout(function () { if (conns.get(conn.url) === conn) run(conn); }, RETRY_MS);
      render();
    });
}

function stillMember(url) {
  if (url === location.origin) return true;
  var view = picture();
  return !view || view.members.some(function (m) { return m.url && m.url.replace(/\/+$/, "") === url; });
}

function onFrame(conn, text) {
  var event = "message";
  var data = "";
  text.split("\n").forEach(function (line) {
    if (line.indexOf("event: ") === 0) event = line.slice(7);
    else if (line.indexOf("data: ") === 0) data += line.slice(6);
  });
  if (!data) return;
  var body = JSON.parse(data);
  conn.seen = now();
  conn.up = true;
  recordFrame(event === "status" ? body.id : conn.id || conn.url, event === "status" ? "status" : "event", body);
  if (event === "status") {
    conn.id = body.id;
    conn.status = body;
    statusById.set(body.id, { status: body, conn: conn });
    body.members.forEach(function (m) { if (m.url) connect(m.url); });
    render();
  } else if (event === "event") {
    events.unshift({ member: conn.id || conn.url, event: body });
    if (events.length > 200) events.length = 200;
    renderEvents();
  }
}

function reachable(entry) {
  return entry && entry.conn.up && now() - entry.conn.seen < STALE_MS && !entry.status.stopped;
}

/** The configuration to draw: the one of the highest-term reachable leader, else of any member. */
function picture() {
  var best = null;
  statusById.forEach(function (e) {
    if (!reachable(e)) return;
    var s = e.status;
    var rank = (s.role === "leader" ? 1e15 : 0) + s.term;
    if (!best || rank > best.rank) best = { rank: rank, status: s };
  });
  if (!best) statusById.forEach(function (e) { if (!best) best = { rank: 0, status: e.status }; });
  return best ? best.status : null;
}

function shownRole(id, member) {
  var e = statusById.get(id);
  if (!reachable(e)) return "unreachable";
  if (e.status.role === "leader") return "leader";
  if (e.status.role === "candidate" || e.status.role === "pre-candidate") return "candidate";
  return member.role === "learner" ? "learner" : "follower";
}

function termColour(term) {
  return "hsl(" + ((term * 67) % 360) + ", 65%, 55%)";
}

function render() {
  var view = picture();
  var ring = document.getElementById("ring");
  var table = document.getElementById("members");
  var prog = document.getElementById("progress");
  var summary = document.getElementById("summary");
  ring.textContent = "";
  table.textContent = "";
  prog.textContent = "";
  if (!view) {
    var problems = [];
    conns.forEach(function (c) { problems.push(c.url + ": " + (c.problem || "connecting")); });
    summary.textContent = "No member reachable yet. " + problems.join("; ");
    return;
  }
  var members = view.members.slice().sort(function (a, b) { return a.id < b.id ? -1 : a.id > b.id ? 1 : 0; });
  var n = members.length;
  var cx = 200, cy = 190, r = n > 1 ? 130 : 0;
  var pos = new Map();
  // A joint configuration is drawn as two overlapping rings, the old voters' and the new
  // voters': members of one only on its outer side, members of both where they overlap.
  var side = new Map();
  if (view.joint) {
    var oldSet = new Set(view.outgoing || members.filter(function (m) { return m.role !== "learner"; }).map(function (m) { return m.id; }));
    var cols = { old: [], both: [], "new": [], learner: [] };
    members.forEach(function (m) {
      var inNew = m.role === "voter", inOld = oldSet.has(m.id);
      var k = inOld && inNew ? "both" : inOld ? "old" : inNew ? "new" : "learner";
      side.set(m.id, k);
      cols[k].push(m.id);
    });
    var colX = { old: cx - 120, both: cx, "new": cx + 120 };
    ["old", "both", "new"].forEach(function (k) {
      cols[k].forEach(function (id, i) { pos.set(id, { x: colX[k], y: cy - 10 + (i - (cols[k].length - 1) / 2) * 76 }); });
    });
    cols.learner.forEach(function (id, i) { pos.set(id, { x: cx + (i - (cols.learner.length - 1) / 2) * 76, y: cy + 150 }); });
    [["old", cx - 60], ["new", cx + 60]].forEach(function (ringSpec) {
      var k = ringSpec[0];
      var ids = members.filter(function (m) { return side.get(m.id) === k || side.get(m.id) === "both"; }).map(function (m) { return m.id; });
      var gr = svg("g", { "data-ring": k, role: "img", "aria-label": k + " configuration: " + ids.join(", "), "class": "conf-ring ring-" + k });
      gr.appendChild(svg("circle", { cx: ringSpec[1], cy: cy - 10, r: 125 }));
      gr.appendChild(svg("text", { x: ringSpec[1] + (k === "old" ? -70 : 70), y: cy - 140, "class": "ring-label" }, k === "old" ? "old voters" : "new voters"));
      ring.appendChild(gr);
    });
  } else {
    members.forEach(function (m, i) {
      var a = -Math.PI / 2 + (2 * Math.PI * i) / n;
      pos.set(m.id, { x: cx + r * Math.cos(a), y: cy + r * Math.sin(a) });
    });
  }
  var leaders = [];
  members.forEach(function (m) { if (shownRole(m.id, m) === "leader") leaders.push(m.id); });
  // Replication links from each reachable leader to the members it replicates to.
  leaders.forEach(function (lid) {
    var ls = statusById.get(lid).status;
    ls.progress.forEach(function (p) {
      var a = pos.get(lid), b = pos.get(p.id);
      if (!a || !b) return;
      ring.appendChild(svg("line", { x1: a.x, y1: a.y, x2: b.x, y2: b.y, "class": "link link-" + p.state }));
    });
  });
  // Over the replication lines: a cut link must show even where the leader still tracks the follower.
  drawMeshLinks(ring, members, pos);
  var voters = 0, votersUp = 0;
  members.forEach(function (m) {
    var role = shownRole(m.id, m);
    var e = statusById.get(m.id);
    var s = e ? e.status : null;
    var p = pos.get(m.id);
    if (m.role !== "learner") {
      voters++;
      if (role !== "unreachable") votersUp++;
    }
    var label = m.id + ": " + role + (s && role !== "unreachable" ? ", term " + s.term + ", commit " + s.commitIndex : "") + (m.role === "learner" ? ", learner" : m.role === "leaving" ? ", leaving" : ", voter");
    var proc = demoProcess(m.id);
    var g = svg("g", { "data-member": m.id, "data-role": role, "aria-label": label + (proc && proc !== "running" ? " (process " + proc + ")" : ""), role: "img", "class": "member role-" + role + " conf-" + m.role, tabindex: "0" });
    if (proc) g.setAttribute("data-process", proc);
    if (side.has(m.id)) g.setAttribute("data-joint", side.get(m.id));
    var fill = role === "unreachable" || !s ? "#bbb" : termColour(s.term);
    g.appendChild(svg("circle", { cx: p.x, cy: p.y, r: 34, fill: fill }));
    g.appendChild(svg("text", { x: p.x, y: p.y - 6, "class": "id" }, m.id));
    g.appendChild(svg("text", { x: p.x, y: p.y + 10, "class": "role" }, role));
    if (s && role !== "unreachable") g.appendChild(svg("text", { x: p.x, y: p.y + 24, "class": "term" }, "term " + s.term));
    else if (proc && proc !== "running") g.appendChild(svg("text", { x: p.x, y: p.y + 24, "class": "term" }, proc));
    g.appendChild(svg("title", {}, label));
    ring.appendChild(g);

    var tr = el("tr", { "data-member": m.id, "data-role": role });
    [m.id, role, m.role, s ? s.runtime : "", s ? s.term : "", s ? s.leader || "none" : "", s ? s.commitIndex : "", s ? s.appliedIndex : "", s ? s.lastIndex : "", s ? s.snapshotIndex : "", s && s.logBytes !== undefined ? bytesText(s.logBytes) : "", m.url || ""].forEach(function (v) {
      tr.appendChild(el("td", {}, v));
    });
    if (s && s.logBytes !== undefined) tr.children[10].setAttribute("data-log-bytes", String(s.logBytes));
    var actions = el("td", { "class": "live-only" });
    var transfer = el("button", { type: "button", "data-action": "transfer", "data-target": m.id }, "make leader");
    transfer.disabled = role === "leader" || role === "unreachable" || m.role !== "voter";
    transfer.onclick = function () { transferTo(m.id); };
    var remove = el("button", { type: "button", "data-action": "remove", "data-target": m.id }, "remove");
    remove.onclick = function () { removeMember(m.id); };
    actions.appendChild(transfer);
    actions.appendChild(remove);
    if (m.role === "learner") {
      var promote = el("button", { type: "button", "data-action": "promote", "data-target": m.id }, "promote");
      promote.disabled = !m.url;
      promote.onclick = function () { promoteLearner(m.id, m.url); };
      actions.appendChild(promote);
    }
    var snap = el("button", { type: "button", "data-action": "snapshot", "data-target": m.id }, "snapshot now");
    var snapUrl = e && e.conn.up ? e.conn.url : m.url;
    snap.disabled = role === "unreachable" || !snapUrl;
    snap.onclick = function () { snapshotNow(snapUrl); };
    actions.appendChild(snap);
    tr.appendChild(actions);
    table.appendChild(tr);
  });
  leaders.forEach(function (lid) {
    statusById.get(lid).status.progress.forEach(function (p) {
      var tr = el("tr", { "data-follower": p.id });
      [lid, p.id, p.match, p.next, p.lag, p.state, p.inflight, p.lastContactMs === null ? "never" : p.lastContactMs + " ms"].forEach(function (v) {
        tr.appendChild(el("td", {}, v));
      });
      prog.appendChild(tr);
    });
  });
  var quorum = Math.floor(voters / 2) + 1;
  var canLose = votersUp - quorum;
  if (view.joint) {
    // Joint consensus needs a majority of each configuration: the smaller margin counts.
    canLose = Math.min.apply(null, ["old", "new"].map(function (k) {
      var ids = members.filter(function (m) { return side.get(m.id) === k || side.get(m.id) === "both"; });
      var up = ids.filter(function (m) { return shownRole(m.id, m) !== "unreachable"; }).length;
      return up - (Math.floor(ids.length / 2) + 1);
    }));
  }
  summary.textContent = (leaders.length === 1 ? "leader " + leaders[0] + " in term " + statusById.get(leaders[0]).status.term : leaders.length === 0 ? "no leader" : "leaders: " + leaders.join(", ")) +
    "; " + votersUp + " of " + voters + " voters up; " + (canLose >= 0 ? "can lose " + canLose + " more voter" + (canLose === 1 ? "" : "s") : "no quorum") +
    (view.joint ? "; joint configuration" : "");
  document.getElementById("leader").textContent = leaders.length === 1 ? leaders[0] : "none";
}

/**
 * The mesh link of each pair of members, as the members themselves report it (status.links): open
 * if either side has it open, down if both ends are up and neither has it (a cut, or a failing
 * network). Its label is the bytes per second both ends sent over the last samples.
 */
function drawMeshLinks(ring, members, pos) {
  var cuts = demoState ? demoState.cuts.map(function (c) { return c.join(" "); }) : [];
  for (var i = 0; i < members.length; i++) {
    for (var j = i + 1; j < members.length; j++) {
      var a = members[i].id, b = members[j].id;
      var pa = pos.get(a), pb = pos.get(b);
      var ea = statusById.get(a), eb = statusById.get(b);
      var la = reachable(ea) ? linkOf(ea.status, b) : null;
      var lb = reachable(eb) ? linkOf(eb.status, a) : null;
      if (!la && !lb) continue;
      var open = (la && la.state === "open") || (lb && lb.state === "open");
      var state = open ? "open" : "down";
      var cut = cuts.indexOf(a < b ? a + " " + b : b + " " + a) >= 0;
      var rate = linkRate(a, b);
      var label = "link " + a + "-" + b + ": " + state + (cut ? " (cut)" : "") + (open ? ", " + formatRate(rate) : "");
      var g = svg("g", { "data-link": a + " " + b, "data-state": state, "data-cut": cut ? "true" : "false", "aria-label": label, role: "img", "class": "mesh mesh-" + state + (cut ? " mesh-cut" : "") });
      g.appendChild(svg("line", { x1: pa.x, y1: pa.y, x2: pb.x, y2: pb.y }));
      var mx = (pa.x + pb.x) / 2, my = (pa.y + pb.y) / 2;
      g.appendChild(svg("text", { x: mx, y: my - 4 }, cut ? "cut" : open ? formatRate(rate) : "down"));
      if (open && rate > 0) {
        // A few dots travel the link, faster with more traffic: sampled flow, not every message.
        var dur = Math.max(0.4, Math.min(4, 20000 / (linkUnitBytes() ? rate : rate * 50))).toFixed(2) + "s";
        var dot = svg("circle", { r: 3, "class": "flow" });
        dot.appendChild(svg("animateMotion", { dur: dur, repeatCount: "indefinite", path: "M" + pa.x + "," + pa.y + " L" + pb.x + "," + pb.y }));
        g.appendChild(dot);
      }
      g.appendChild(svg("title", {}, label));
      ring.appendChild(g);
    }
  }
}

function linkOf(status, peer) {
  if (!status.links) return null;
  for (var i = 0; i < status.links.length; i++) if (status.links[i].peer === peer) return status.links[i];
  return null;
}

/** "a b" -> [{t, bytes}] where bytes is what both ends sent to each other (totals). */
var linkHistory = new Map();
/** A simulated run happens in virtual milliseconds: its link rates are over a shorter window. */
var LINK_WINDOW_MS = REPLAY && REPLAY.source === "simulator" ? 250 : 5000;
function sampleLinks(now) {
  var seen = new Set();
  statusById.forEach(function (e, id) {
    if (!reachable(e) || !e.status.links) return;
    e.status.links.forEach(function (l) {
      var key = id < l.peer ? id + " " + l.peer : l.peer + " " + id;
      if (seen.has(key)) return;
      seen.add(key);
      var other = statusById.get(l.peer);
      var back = other && reachable(other) ? linkOf(other.status, id) : null;
      var h = linkHistory.get(key) || [];
      h.push({ t: now, bytes: l.bytesOut + (back ? back.bytesOut : 0), both: !!back });
      while (h.length > 0 && h[0].t < now - LINK_WINDOW_MS) h.shift();
      linkHistory.set(key, h);
    });
  });
}
function linkRate(a, b) {
  var h = linkHistory.get(a < b ? a + " " + b : b + " " + a);
  if (!h || h.length < 2) return 0;
  var y = h[h.length - 1];
  // Back to the first sample comparable with the last: totals from another set of ends (one end
  // went away) or from before a restart (they fell) are not.
  var k = h.length - 1;
  while (k > 0 && h[k - 1].both === y.both && h[k - 1].bytes <= h[k].bytes) k--;
  var x = h[k];
  if (y.t === x.t) return 0;
  return (y.bytes - x.bytes) / ((y.t - x.t) / 1000);
}
function linkUnitBytes() {
  return !REPLAY || REPLAY.linkUnit !== "messages";
}
function formatRate(rate) {
  return linkUnitBytes() ? formatBytes(rate) + "/s" : (rate < 10 ? rate.toFixed(1) : Math.round(rate)) + " msg/s";
}
function formatBytes(n) {
  return n >= 1e6 ? (n / 1e6).toFixed(1) + " MB" : n >= 1e3 ? (n / 1e3).toFixed(1) + " kB" : Math.round(n) + " B";
}

// ---------------------------------------------------------------------------------------------
// The local demo's controls (meshraft demo): its supervisor's URL comes in the members' status.

var demoState = null;
var demoUrl = null;
var demoPolling = false;

function demoRequest(method, path, body) {
  var headers = authHeaders(tokens.admin || tokens.api);
  if (body) headers["Content-Type"] = "application/json";
  return fetch(demoUrl + path, { method: method, headers: headers, body: body ? JSON.stringify(body) : undefined, cache: "no-store" });
}

function pollDemo() {
  if (REPLAY) return; // a recording of a demo: its controls are not for a replay
  var url = null;
  statusById.forEach(function (e) { if (e.status.demo) url = e.status.demo.replace(/\/+$/, ""); });
  if (url) demoUrl = url;
  if (!demoUrl || demoPolling) return;
  demoPolling = true;
  demoRequest("GET", "/demo")
    .then(function (res) {
      if (!res.ok) {
        document.getElementById("demo-problem").textContent = res.status === 401 ? "the demo controls want the admin token" : "demo controls: HTTP " + res.status;
        return null;
      }
      return res.json();
    })
    .then(function (state) {
      if (state) {
        demoState = state;
        document.getElementById("demo-problem").textContent = "";
      }
      renderDemo();
    })
    .catch(function () {
      document.getElementById("demo-problem").textContent = "the demo supervisor does not answer";
    })
    .then(function () { demoPolling = false; });
}

function demoAction(path, body) {
  var out = document.getElementById("demo-result");
  out.textContent = path + " " + JSON.stringify(body) + " ...";
  out.removeAttribute("data-outcome");
  return demoRequest("POST", path, body)
    .then(function (res) {
      return res.json().then(function (j) {
        if (res.ok) demoState = j;
        out.textContent = res.ok ? "done: " + path.slice(6) + " " + Object.values(body).join(" ") : "refused (" + res.status + "): " + (j.error ? j.error.code + ": " + j.error.message : "");
        out.setAttribute("data-outcome", res.ok ? "ok" : "refused");
        renderDemo();
        render();
      });
    })
    .catch(function (err) {
      out.textContent = "failed: " + err.message;
      out.setAttribute("data-outcome", "failed");
    });
}

/** The demo supervisor's word on member 'id''s process (running, paused, killed), or null. */
function demoProcess(id) {
  if (!demoState) return null;
  for (var i = 0; i < demoState.members.length; i++) if (demoState.members[i].id === id) return demoState.members[i].state;
  return null;
}

function renderDemo() {
  var panel = document.getElementById("demo");
  panel.hidden = !demoUrl;
  if (!demoState) return;
  var rows = document.getElementById("demo-members");
  rows.textContent = "";
  demoState.members.forEach(function (m) {
    var tr = el("tr", { "data-member": m.id, "data-state": m.state });
    tr.appendChild(el("td", {}, m.id));
    tr.appendChild(el("td", {}, m.state));
    var td = el("td", {});
    [["kill", m.state !== "killed"], ["restart", true], ["pause", m.state === "running"], ["resume", m.state === "paused"]].forEach(function (x) {
      var b = el("button", { type: "button", "data-demo": x[0], "data-target": m.id }, x[0]);
      b.disabled = !x[1];
      b.onclick = function () { demoAction("/demo/" + x[0], { id: m.id }); };
      td.appendChild(b);
    });
    tr.appendChild(td);
    rows.appendChild(tr);
  });
  var links = document.getElementById("demo-links");
  links.textContent = "";
  var ids = demoState.members.map(function (m) { return m.id; });
  var cuts = demoState.cuts.map(function (c) { return c.join(" "); });
  for (var i = 0; i < ids.length; i++) {
    for (var j = i + 1; j < ids.length; j++) {
      (function (a, b) {
        var cut = cuts.indexOf(a + " " + b) >= 0;
        var btn = el("button", { type: "button", "data-demo": cut ? "heal" : "cut", "data-link": a + " " + b }, (cut ? "heal " : "cut ") + a + "-" + b);
        btn.onclick = function () { demoAction(cut ? "/demo/heal" : "/demo/cut", { a: a, b: b }); };
        links.appendChild(btn);
      })(ids[i], ids[j]);
    }
  }
  var l = demoState.load;
  var load = document.getElementById("demo-load-state");
  load.textContent = (l.rate > 0 ? "writing " + l.rate + "/s" : "stopped") + "; ok " + l.ok + ", failed " + l.failed + ", unknown " + l.unknown;
  load.setAttribute("data-rate", String(l.rate));
  load.setAttribute("data-ok", String(l.ok));
}

document.getElementById("demo-load").onsubmit = function (ev) {
  ev.preventDefault();
  demoAction("/demo/load", { rate: Number(document.getElementById("demo-rate").value) });
};
document.getElementById("demo-load-stop").onclick = function () { demoAction("/demo/load", { rate: 0 }); };

function renderEvents() {
  var list = document.getElementById("events");
  list.textContent = "";
  events.slice(0, 50).forEach(function (x) {
    var e = x.event;
    var what = e.type === "role" ? e.role + " in term " + e.term + (e.leader ? ", leader " + e.leader : "") :
      e.type === "membership" ? "voters " + e.voters.join(",") + (e.learners.length ? "; learners " + e.learners.join(",") : "") + (e.leaving.length ? "; leaving " + e.leaving.join(",") : "") :
      e.type === "snapshot-taken" ? "snapshot at " + e.index :
      e.type === "snapshot-restored" ? "restored snapshot " + e.index :
      e.message || e.type;
    list.appendChild(el("li", {}, new Date(e.time).toISOString().slice(11, 23) + " " + x.member + " " + e.type + ": " + what));
  });
}

/**
 * Admin calls go straight to the leader (browsers drop Authorization on cross-origin redirects),
 * or to the member at target (a snapshot is each member's own).
 */
function admin(method, path, body, target) {
  var out = document.getElementById("admin-result");
  var view = picture();
  var leader = target ? { url: target } : view && view.role === "leader" ? view : null;
  if (!leader) {
    out.textContent = "no reachable leader to ask";
    return Promise.resolve();
  }
  out.textContent = method + " " + path + " ...";
  out.removeAttribute("data-outcome");
  var headers = authHeaders(tokens.admin || tokens.api);
  if (body) headers["Content-Type"] = "application/json";
  return fetch(leader.url + path, { method: method, headers: headers, body: body ? JSON.stringify(body) : undefined })
    .then(function (res) {
      return res.text().then(function (text) {
        var answer = text;
        try {
          var j = JSON.parse(text);
          answer = j.error ? j.error.code + ": " + j.error.message : JSON.stringify(j);
        } catch (e) { /* not JSON */ }
        out.textContent = (res.ok ? "done: " : "refused (" + res.status + "): ") + answer;
        out.setAttribute("data-outcome", res.ok ? "ok" : "refused");
      });
    })
    .catch(function (err) {
      out.textContent = "failed: " + err.message;
      out.setAttribute("data-outcome", "failed");
    });
}
function transferTo(id) { return admin("POST", "/admin/transfer-leader", { to: id }); }
function removeMember(id) {
  if (!confirm("Remove " + id + " from the cluster?")) return;
  return admin("DELETE", "/admin/members/" + encodeURIComponent(id));
}

function promoteLearner(id, url) { return admin("POST", "/admin/members", { id: id, url: url, role: "voter" }); }
function snapshotNow(url) { return admin("POST", "/admin/snapshot", null, url); }
document.getElementById("add-member").onsubmit = function (ev) {
  ev.preventDefault();
  admin("POST", "/admin/members", {
    id: document.getElementById("add-id").value.trim(),
    url: document.getElementById("add-url").value.trim(),
    role: document.getElementById("add-role").value,
  });
};

document.getElementById("tokens").onsubmit = function (ev) {
  ev.preventDefault();
  tokens.api = document.getElementById("api-token").value;
  tokens.admin = document.getElementById("admin-token").value;
  sessionStorage.setItem("meshraft-token", tokens.api);
  sessionStorage.setItem("meshraft-admin-token", tokens.admin);
  // Reconnect every stream with the new token.
  conns.forEach(function (c) { if (c.controller) c.controller.abort(); });
};
document.getElementById("api-token").value = tokens.api;
document.getElementById("admin-token").value = tokens.admin;

// ---------------------------------------------------------------------------------------------
// Charts of the last minutes, from the frames the page already gets (nothing extra on members):
// the cluster's commits per second (highest commit index among reachable members, per sample)
// and a mark at each leader change.

var SAMPLE_MS = 500;
var HISTORY_MS = 5 * 60 * 1000;
/** {t, commit} */
var samples = [];
/** {t, leader} */
var leaderChanges = [];
var lastLeader = null;

function sample() {
  var now = window.now();
  var commit = -1;
  statusById.forEach(function (e) { if (reachable(e)) commit = Math.max(commit, e.status.commitIndex); });
  if (commit >= 0) samples.push({ t: now, commit: commit });
  var shown = document.getElementById("leader").textContent;
  if (shown !== "none" && shown !== lastLeader) {
    if (lastLeader !== null) leaderChanges.push({ t: now, leader: shown });
    lastLeader = shown;
  }
  while (samples.length > 0 && samples[0].t < now - HISTORY_MS) samples.shift();
  while (leaderChanges.length > 0 && leaderChanges[0].t < now - HISTORY_MS) leaderChanges.shift();
  addChartRow(now, sampleLoad(now));
  drawChart(now);
  sampleLinks(now);
  pollDemo();
}

// Writes and reads per second and their latency quantiles over the last LOAD_WINDOW_MS, from the
// totals in each member's status (load): counter deltas and histogram bucket deltas, summed over
// the members (writes are served by the leader, reads by whoever answers them).
var LOAD_WINDOW_MS = 5000;
/** id -> [{t, load}] */
var loadHistory = new Map();

function sampleLoad(now) {
  statusById.forEach(function (e, id) {
    if (!reachable(e) || !e.status.load) return;
    var h = loadHistory.get(id) || [];
    h.push({ t: now, load: e.status.load });
    while (h.length > 0 && h[0].t < now - LOAD_WINDOW_MS) h.shift();
    loadHistory.set(id, h);
  });
  var acc = { writes: 0, reads: 0, seconds: 0, writeCounts: null, readCounts: null, writeLe: null, readLe: null };
  loadHistory.forEach(function (h) {
    if (h.length < 2) return;
    var a = h[0].load, b = h[h.length - 1].load;
    // A restarted member starts its totals again: skip its window.
    if (b.writes < a.writes || b.reads < a.reads) return;
    acc.writes += b.writes - a.writes;
    acc.reads += b.reads - a.reads;
    acc.seconds = Math.max(acc.seconds, (h[h.length - 1].t - h[0].t) / 1000);
    acc.writeCounts = addDeltas(acc.writeCounts, a.writeSeconds.counts, b.writeSeconds.counts);
    acc.readCounts = addDeltas(acc.readCounts, a.readSeconds.counts, b.readSeconds.counts);
    acc.writeLe = b.writeSeconds.le;
    acc.readLe = b.readSeconds.le;
  });
  var writeRate = acc.seconds > 0 ? acc.writes / acc.seconds : 0;
  var readRate = acc.seconds > 0 ? acc.reads / acc.seconds : 0;
  showLoad("load-writes", "writes", writeRate, acc.writeLe, acc.writeCounts);
  showLoad("load-reads", "reads", readRate, acc.readLe, acc.readCounts);
  return { writeRate: writeRate, readRate: readRate, writeP99: quantileMs(acc.writeLe, acc.writeCounts, 0.99), readP99: quantileMs(acc.readLe, acc.readCounts, 0.99) };
}

function addDeltas(into, a, b) {
  var out = into || a.map(function () { return 0; });
  for (var i = 0; i < out.length; i++) out[i] += Math.max(0, (b[i] || 0) - (a[i] || 0));
  return out;
}

/** The upper bound (ms) of the bucket holding quantile q, or null without observations. */
function quantileMs(le, counts, q) {
  if (!le || !counts) return null;
  var total = counts.reduce(function (x, y) { return x + y; }, 0);
  if (total === 0) return null;
  var seen = 0;
  for (var i = 0; i < counts.length; i++) {
    seen += counts[i];
    if (seen >= q * total) return i < le.length ? le[i] * 1000 : Infinity;
  }
  return Infinity;
}

function showLoad(elementId, what, rate, le, counts) {
  var node = document.getElementById(elementId);
  var p50 = quantileMs(le, counts, 0.5), p99 = quantileMs(le, counts, 0.99);
  var fmt = function (ms) { return ms === null ? "-" : ms === Infinity ? "> 10 s" : "<= " + ms + " ms"; };
  node.textContent = what + " " + rate.toFixed(1) + "/s, p50 " + fmt(p50) + ", p99 " + fmt(p99);
  node.setAttribute("data-rate", rate.toFixed(3));
  node.setAttribute("data-p50-ms", p50 === null ? "" : String(p50));
  node.setAttribute("data-p99-ms", p99 === null ? "" : String(p99));
}

/**
 * The charts of the last minutes, drawn with uPlot (shipped inside the page: src/http/vendor):
 * commits, writes and reads per second with a mark at each leader change, and write and read
 * latency p99. One row per sample; the marks are elements over the plot (data-leader-change).
 */
var chartRows = [];
var plots = null;
/** Members with a series pair (fsync, event loop) in the health chart, in order of appearance. */
var healthIds = [];

function addChartRow(now, load) {
  var rate = 0;
  if (samples.length >= 2) {
    var a = samples[samples.length - 2], b = samples[samples.length - 1];
    if (b.t > a.t && b.t === now) rate = Math.max(0, b.commit - a.commit) / ((b.t - a.t) / 1000);
  }
  // Per member: its fsync p99 and event-loop delay p99 as its status says (null when unknown).
  var health = {};
  statusById.forEach(function (e, id) {
    if (!reachable(e)) return;
    var save = e.status.saveP99Ms, loop = e.status.eventLoopP99Ms;
    if (save === undefined && loop === undefined) return;
    health[id] = { save: save === undefined ? null : save, loop: loop === undefined ? null : loop };
    if (healthIds.indexOf(id) < 0) healthIds.push(id);
  });
  chartRows.push({ t: now, commits: rate, writes: load.writeRate, reads: load.readRate, writeP99: finite(load.writeP99), readP99: finite(load.readP99), health: health });
  while (chartRows.length > 0 && chartRows[0].t < now - HISTORY_MS) chartRows.shift();
}
function finite(ms) { return ms === null || ms === Infinity ? null : ms; }

function makePlots() {
  var time = !REPLAY || REPLAY.source !== "simulator";
  var axisX = { stroke: "#555", size: 30 };
  var common = { width: 600, height: 150, legend: { show: true }, cursor: { drag: { x: false, y: false } }, scales: { x: { time: time } } };
  var rates = new uPlot(Object.assign({}, common, {
    title: "per second",
    series: [{ label: time ? "time" : "virtual s" },
      { label: "commits", stroke: "#2a7ab0", width: 1.5 },
      { label: "writes", stroke: "#3a9a4a", width: 1.5 },
      { label: "reads", stroke: "#a05ab0", width: 1.5 }],
    axes: [axisX, { stroke: "#555", size: 50 }],
    hooks: { draw: [drawMarks] },
  }), [[], [], [], []], document.getElementById("chart"));
  var latency = new uPlot(Object.assign({}, common, {
    title: "latency p99 (ms, bucket bound)",
    series: [{ label: time ? "time" : "virtual s" },
      { label: "write p99", stroke: "#3a9a4a", width: 1.5 },
      { label: "read p99", stroke: "#a05ab0", width: 1.5 }],
    axes: [axisX, { stroke: "#555", size: 50 }],
  }), [[], [], []], document.getElementById("latency-chart"));
  var health = new uPlot(Object.assign({}, common, {
    title: "fsync p99 and event-loop delay p99 (ms)",
    series: [{ label: time ? "time" : "virtual s" }],
    axes: [axisX, { stroke: "#555", size: 50 }],
  }), [[]], document.getElementById("health-chart"));
  var marks = el("div", { "class": "marks" });
  rates.over.appendChild(marks);
  return { rates: rates, latency: latency, health: health, healthSeries: 0, marks: marks };
}

function drawChart(now) {
  var chart = document.getElementById("chart");
  var peak = 0;
  chartRows.forEach(function (r) { peak = Math.max(peak, r.commits); });
  chart.setAttribute("data-peak-rate", String(peak));
  var span = chartRows.length > 0 ? now - chartRows[0].t : 0;
  chart.setAttribute("aria-label", "commits, writes and reads per second over the last " + Math.round(span / 1000) + " s; commits peak " + peak.toFixed(1) + "; " + leaderChanges.length + " leader changes");
  if (typeof uPlot === "undefined") return;
  if (!plots) plots = makePlots();
  var xs = chartRows.map(function (r) { return r.t / 1000; });
  var col = function (k) { return chartRows.map(function (r) { return r[k]; }); };
  plots.rates.setData([xs, col("commits"), col("writes"), col("reads")]);
  plots.latency.setData([xs, col("writeP99"), col("readP99")]);
  var colors = ["#2a7ab0", "#3a9a4a", "#a05ab0", "#c07020", "#b03a3a", "#208080"];
  while (plots.healthSeries < healthIds.length) {
    var id = healthIds[plots.healthSeries], c = colors[plots.healthSeries % colors.length];
    plots.health.addSeries({ label: id + " fsync", stroke: c, width: 1.5 });
    plots.health.addSeries({ label: id + " event loop", stroke: c, width: 1, dash: [4, 3] });
    plots.healthSeries++;
  }
  var healthData = [xs];
  var points = 0;
  healthIds.forEach(function (id) {
    ["save", "loop"].forEach(function (k) {
      healthData.push(chartRows.map(function (r) {
        var v = r.health && r.health[id] ? r.health[id][k] : null;
        if (v !== null) points++;
        return v;
      }));
    });
  });
  plots.health.setData(healthData);
  document.getElementById("health-chart").setAttribute("data-points", String(points));
}

/** After uPlot drew (it redraws in a microtask, with the new scales): a mark per leader change. */
function drawMarks(u) {
  if (!plots) return;
  plots.marks.textContent = "";
  leaderChanges.forEach(function (c) {
    var left = u.valToPos(c.t / 1000, "x");
    if (!(left >= 0)) return;
    var m = el("div", { "class": "leader-mark", "data-leader-change": c.leader, title: "leader " + c.leader }, c.leader);
    m.style.left = left + "px";
    plots.marks.appendChild(m);
  });
}

// ---------------------------------------------------------------------------------------------
// Replay: a recording (src/http/dashboard-replay.ts) embedded in the page as window.MESHRAFT_REPLAY
// plays in this same view instead of live streams; the live page records what it receives and
// exports it in that format.

var TICK_MS = 100;
var RECORD_MS = 5 * 60 * 1000;
/** Frames received over the last RECORD_MS, for "export recording" (live pages only). */
var recorded = [];
var replay = null;

function recordFrame(member, kind, data) {
  if (REPLAY) return;
  var t = Date.now();
  recorded.push({ t: t, member: member, kind: kind, data: data });
  var drop = 0;
  while (drop < recorded.length && recorded[drop].t < t - RECORD_MS) drop++;
  if (drop > 0) recorded.splice(0, drop);
}

function exportRecording() {
  var out = document.getElementById("export-result");
  var t = Date.now();
  var rec = { version: 1, source: "live", title: "meshraft cluster at " + location.host + ", recorded " + new Date(t).toISOString(),
    start: recorded.length ? recorded[0].t : t, end: t, linkUnit: "bytes", frames: recorded.slice(), operations: [], faults: [], violation: null };
  // The page as served (not the DOM it became), with the recording where the marker is.
  return fetch(location.pathname, { cache: "no-store" })
    .then(function (res) { return res.text(); })
    .then(function (html) {
      var marker = "<!--meshraft-" + "replay-->";
      var at = html.indexOf(marker);
      var json = JSON.stringify(rec).replace(/</g, "\\u003c");
      var page = html.slice(0, at) + "<script>window.MESHRAFT_REPLAY = " + json + ";</" + "script>" + html.slice(at + marker.length);
      var a = el("a", { href: URL.createObjectURL(new Blob([page], { type: "text/html" })), download: "meshraft-recording.html" });
      document.body.appendChild(a);
      a.click();
      a.remove();
      out.textContent = "exported " + rec.frames.length + " frames over " + Math.round((rec.end - rec.start) / 1000) + " s";
      out.setAttribute("data-frames", String(rec.frames.length));
    })
    .catch(function (err) { out.textContent = "export failed: " + err.message; });
}

function startReplay() {
  var rec = REPLAY;
  replay = { rec: rec, i: 0, playing: false, speed: rec.source === "simulator" ? 0.1 : 1 };
  document.body.classList.add("replaying");
  document.getElementById("replay").hidden = false;
  document.getElementById("replay-title").textContent = rec.title;
  var slider = document.getElementById("replay-slider");
  slider.min = String(rec.start);
  slider.max = String(rec.end);
  slider.step = "any";
  slider.oninput = function () { setPlaying(false); replaySeek(Number(slider.value)); };
  document.getElementById("replay-play").onclick = function () { setPlaying(!replay.playing); };
  document.getElementById("replay-step").onclick = function () { setPlaying(false); replayStep(); };
  var speed = document.getElementById("replay-speed");
  speed.value = String(replay.speed);
  speed.onchange = function () { replay.speed = Number(speed.value); };
  if (rec.violation) {
    var v = document.getElementById("violation");
    v.hidden = false;
    v.textContent = "violation" + (rec.violation.t !== null ? " at " + fmtT(rec.violation.t) : "") + ": " + rec.violation.message;
  }
  replaySeek(rec.start);
  setInterval(function () {
    if (!replay.playing) return;
    var next = Math.min(rec.end, replayT + TICK_MS * replay.speed);
    replayMove(next);
    if (next >= rec.end) setPlaying(false);
  }, TICK_MS);
}

function setPlaying(on) {
  replay.playing = on && replayT < replay.rec.end;
  var b = document.getElementById("replay-play");
  b.textContent = replay.playing ? "pause" : "play";
  b.setAttribute("aria-pressed", replay.playing ? "true" : "false");
}

function applyFrame(f) {
  if (f.kind === "status") statusById.set(f.member, { status: f.data, conn: { up: true, seen: f.t, url: f.member } });
  else {
    events.unshift({ member: f.member, event: f.data });
    if (events.length > 200) events.length = 200;
  }
}

function advanceTo(t) {
  var frames = replay.rec.frames;
  while (replay.i < frames.length && frames[replay.i].t <= t) applyFrame(frames[replay.i++]);
  replayT = t;
}

/** Forward to 't', drawing as the live page would. */
function replayMove(t) {
  advanceTo(t);
  render();
  renderEvents();
  sample();
  showReplayTime();
}

/** To any time: start over, and rebuild the charts' recent samples on the way. */
function replaySeek(t) {
  var rec = replay.rec;
  t = Math.max(rec.start, Math.min(rec.end, t));
  statusById.clear();
  events = [];
  samples.length = 0;
  chartRows.length = 0;
  leaderChanges.length = 0;
  lastLeader = null;
  loadHistory.clear();
  linkHistory.clear();
  replay.i = 0;
  var from = Math.max(rec.start, t - HISTORY_MS);
  advanceTo(from);
  var stepMs = Math.max(1, (t - from) / 150);
  for (var x = from + stepMs; x < t; x += stepMs) {
    advanceTo(x);
    render();
    sample();
  }
  replayMove(t);
}

/** To the next event (a role change, a fault, a membership change) after the current time. */
function replayStep() {
  var frames = replay.rec.frames;
  var j = replay.i;
  while (j < frames.length && frames[j].kind !== "event") j++;
  replayMove(j < frames.length ? frames[j].t : replay.rec.end);
}

function fmtT(t) {
  var rec = replay ? replay.rec : REPLAY;
  return rec.source === "simulator" ? (t - rec.start).toFixed(1) + " ms" : new Date(t).toISOString().slice(11, 23);
}

function showReplayTime() {
  var rec = replay.rec;
  var slider = document.getElementById("replay-slider");
  slider.value = String(replayT);
  var time = document.getElementById("replay-time");
  time.textContent = fmtT(replayT) + " of " + fmtT(rec.end);
  time.setAttribute("data-t", String(replayT));
  var cursor = document.getElementById("timeline-cursor");
  if (cursor) {
    var x = timelineX(replayT);
    cursor.setAttribute("x1", x);
    cursor.setAttribute("x2", x);
  }
}

var TL = { W: 1000, left: 70, right: 10, lane: 14, top: 34 };
function timelineX(t) {
  var rec = replay.rec;
  var span = Math.max(1, rec.end - rec.start);
  return TL.left + ((t - rec.start) / span) * (TL.W - TL.left - TL.right);
}

/**
 * Jepsen's timeline: one lane per client, each operation a bar from call to answer, coloured by
 * outcome (unknown runs to the end); fault windows shaded behind; the violation, if any, marked.
 */
function drawTimeline() {
  var rec = replay.rec;
  var tl = document.getElementById("timeline");
  tl.textContent = "";
  var clients = [];
  rec.operations.forEach(function (o) { if (clients.indexOf(o.client) < 0) clients.push(o.client); });
  clients.sort();
  var H = TL.top + Math.max(1, clients.length) * TL.lane + 20;
  tl.setAttribute("viewBox", "0 0 " + TL.W + " " + H);
  tl.style.height = H + "px";
  rec.faults.forEach(function (f, i) {
    var x1 = timelineX(f.start), x2 = timelineX(f.end === null ? rec.end : f.end);
    var g = svg("g", { "class": "fault", "data-fault": f.what });
    g.appendChild(svg("rect", { x: x1, y: 0, width: Math.max(1, x2 - x1), height: H - 14 }));
    g.appendChild(svg("text", { x: x1 + 2, y: 9 + (i % 3) * 9 }, f.what));
    g.appendChild(svg("title", {}, f.what + ": " + fmtT(f.start) + " to " + (f.end === null ? "the end" : fmtT(f.end))));
    tl.appendChild(g);
  });
  clients.forEach(function (c, i) {
    tl.appendChild(svg("text", { x: TL.left - 4, y: TL.top + i * TL.lane + 10, "class": "lane" }, c));
  });
  var bad = rec.violation && rec.violation.key;
  rec.operations.forEach(function (o, k) {
    var lane = clients.indexOf(o.client);
    var x1 = timelineX(o.call), x2 = timelineX(o.return === null ? rec.end : o.return);
    var violating = bad !== null && bad !== undefined && o.key === bad;
    var r = svg("rect", { x: x1, y: TL.top + lane * TL.lane + 2, width: Math.max(2, x2 - x1), height: TL.lane - 4,
      "class": "op op-" + o.outcome + (violating ? " op-violating" : ""), "data-op": String(k), "data-outcome": o.outcome });
    if (violating) r.setAttribute("data-violation", "true");
    r.appendChild(svg("title", {}, o.client + ": " + o.label + " (" + o.outcome + ", " + fmtT(o.call) + (o.return === null ? ", no answer" : " to " + fmtT(o.return)) + ")"));
    tl.appendChild(r);
  });
  if (rec.violation) {
    var vx = timelineX(rec.violation.t === null ? rec.end : rec.violation.t);
    var vg = svg("g", { "class": "violation", "data-violation": "marker" });
    vg.appendChild(svg("line", { x1: vx, y1: 0, x2: vx, y2: H - 14 }));
    vg.appendChild(svg("text", { x: vx - 3, y: H - 3, "class": "end" }, "violation"));
    vg.appendChild(svg("title", {}, rec.violation.message));
    tl.appendChild(vg);
  }
  tl.appendChild(svg("text", { x: TL.left, y: H - 3, "class": "axis-label" }, fmtT(rec.start)));
  tl.appendChild(svg("text", { x: TL.W - TL.right, y: H - 3, "class": "axis-label end" }, fmtT(rec.end)));
  tl.appendChild(svg("line", { id: "timeline-cursor", x1: TL.left, y1: 0, x2: TL.left, y2: H - 14 }));
  tl.setAttribute("aria-label", "timeline: " + rec.operations.length + " client operations in " + clients.length + " lanes, " + rec.faults.length + " faults" + (rec.violation ? ", a violation" : ""));
  tl.onclick = function (ev) {
    var box = tl.getBoundingClientRect();
    var x = ((ev.clientX - box.left) / box.width) * TL.W;
    var t = rec.start + ((x - TL.left) / (TL.W - TL.left - TL.right)) * (rec.end - rec.start);
    setPlaying(false);
    replaySeek(t);
  };
}

document.getElementById("export-recording").onclick = function () { exportRecording(); };
if (REPLAY) {
  startReplay();
  drawTimeline();
} else {
  connect(location.origin);
  // Staleness shows even when no frame arrives (a paused member sends nothing).
  setInterval(function () { render(); sample(); }, SAMPLE_MS);
}
`;

const STYLE = `
body { font: 14px system-ui, sans-serif; margin: 1em 2em; color: #222; }
h1 { font-size: 1.3em; margin: 0 0 .3em; }
#summary { margin: .3em 0 .8em; font-weight: 600; }
.layout { display: flex; gap: 2em; flex-wrap: wrap; align-items: flex-start; }
svg#ring { width: 400px; height: 380px; border: 1px solid #ddd; border-radius: 6px; background: #fafafa; }
.member circle { stroke: #555; stroke-width: 2; }
.conf-ring circle { fill: none; stroke-width: 3; stroke-dasharray: 8 5; }
.ring-old circle { stroke: #b36b00; }
.ring-new circle { stroke: #2a7ab0; }
.ring-label { font: 12px sans-serif; text-anchor: middle; fill: #444; }
.member.role-leader circle { stroke: #000; stroke-width: 6; }
.member.role-candidate circle { stroke-dasharray: 6 3; }
.member.conf-learner circle { stroke-dasharray: 3 3; }
.member.role-unreachable circle { stroke: #999; stroke-dasharray: 2 4; }
.member text { text-anchor: middle; font-size: 12px; fill: #111; }
.member text.id { font-weight: 700; font-size: 14px; }
.link { stroke: #888; stroke-width: 2; }
.link-probe { stroke-dasharray: 4 4; }
.link-snapshot { stroke: #c60; }
table { border-collapse: collapse; margin: .4em 0 1em; }
th, td { border: 1px solid #ddd; padding: 2px 6px; text-align: right; }
th { background: #f0f0f0; }
td:first-child, th:first-child { text-align: left; }
tr[data-role="unreachable"] { color: #999; }
tr[data-role="leader"] { font-weight: 700; }
#events { font: 12px ui-monospace, monospace; max-height: 16em; overflow: auto; padding-left: 0; list-style: none; }
form#tokens { margin: .5em 0; }
form#tokens input { width: 12em; }
#chart, #latency-chart, #health-chart { display: inline-block; vertical-align: top; margin-right: 1em; }
#chart .marks { position: absolute; inset: 0; pointer-events: none; }
#chart .leader-mark { position: absolute; top: 0; bottom: 0; border-left: 1px dashed #c33; font-size: 10px; color: #c33; padding-left: 2px; }
.mesh line { stroke: #bbb; stroke-width: 1; }
.mesh-down line { stroke: #c33; stroke-width: 2; stroke-dasharray: 6 4; }
.mesh text { font-size: 10px; fill: #666; text-anchor: middle; }
.mesh-down text { fill: #c33; font-weight: 700; }
.mesh .flow { fill: #2a7ab0; }
#demo { border: 1px solid #e0c080; background: #fffaf0; border-radius: 6px; padding: .3em 1em .8em; margin: 1em 0; }
#demo button { margin-right: .3em; }
#demo-result, #demo-problem { font: 12px ui-monospace, monospace; min-height: 1.2em; }
body.replaying .live-only { display: none; }
#replay { border: 1px solid #9bc; background: #f4f9fc; border-radius: 6px; padding: .5em 1em; margin: .5em 0 1em; }
#replay-slider { width: 40em; vertical-align: middle; }
#replay-title { font-weight: 600; margin-bottom: .3em; }
#violation { color: #fff; background: #c22; padding: .3em .6em; margin: .4em 0; font-weight: 700; border-radius: 4px; }
svg#timeline { width: 100%; max-width: 1000px; display: block; margin-top: .5em; background: #fff; border: 1px solid #ddd; cursor: pointer; }
#timeline .fault rect { fill: #f3d9a4; opacity: .45; }
#timeline .fault text, #timeline .lane, #timeline .axis-label { font-size: 9px; fill: #555; }
#timeline .lane { text-anchor: end; }
#timeline .end { text-anchor: end; }
#timeline .op-ok { fill: #3a9a4a; }
#timeline .op-failed { fill: #c33; }
#timeline .op-unknown { fill: #e0a020; opacity: .6; }
#timeline .op-violating { stroke: #c00; stroke-width: 2; }
#timeline .violation line { stroke: #c00; stroke-width: 2; }
#timeline .violation text { fill: #c00; font-size: 10px; font-weight: 700; }
#timeline-cursor { stroke: #225; stroke-width: 1.5; }
#admin-result { font: 12px ui-monospace, monospace; min-height: 1.2em; }
`;

/** Where a replay page carries its recording (dashboard-replay.ts), before the script. */
export const REPLAY_MARKER = "<!--meshraft-replay-->";

export const DASHBOARD_HTML: string = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>meshraft dashboard</title>
<link rel="icon" href="data:,">
<style>${UPLOT_CSS}</style>
<style>${STYLE}</style>
</head>
<body>
<h1>meshraft cluster</h1>
<section id="replay" hidden aria-label="replay controls">
  <div id="replay-title"></div>
  <button type="button" id="replay-play" aria-pressed="false">play</button>
  <button type="button" id="replay-step">step</button>
  <label>speed <select id="replay-speed"><option value="0.01">0.01x</option><option value="0.1">0.1x</option><option value="0.25">0.25x</option><option value="1">1x</option><option value="4">4x</option><option value="16">16x</option></select></label>
  <input id="replay-slider" type="range" aria-label="time">
  <span id="replay-time" role="status"></span>
  <div id="violation" role="alert" hidden></div>
  <svg id="timeline" role="img" aria-label="timeline"></svg>
</section>
<div id="summary" role="status" aria-live="polite">connecting ...</div>
<div>leader: <span id="leader">none</span></div>
<form id="tokens" class="live-only" autocomplete="off">
  <label>API token <input id="api-token" type="password"></label>
  <label>admin token <input id="admin-token" type="password"></label>
  <button type="submit">use</button>
</form>
<div class="layout">
  <svg id="ring" viewBox="0 0 400 380" role="group" aria-label="cluster members in a ring"></svg>
  <div>
    <h2>Members</h2>
    <table>
      <thead><tr><th>id</th><th>role</th><th>config</th><th>runtime</th><th>term</th><th>leader</th><th>commit</th><th>applied</th><th>last</th><th>snapshot</th><th>log size</th><th>url</th><th>admin</th></tr></thead>
      <tbody id="members"></tbody>
    </table>
    <h2>Replication (as the leader sees it)</h2>
    <table>
      <thead><tr><th>leader</th><th>follower</th><th>match</th><th>next</th><th>lag</th><th>state</th><th>inflight</th><th>last contact</th></tr></thead>
      <tbody id="progress"></tbody>
    </table>
    <form id="add-member" class="live-only" autocomplete="off">add a member:
      <label>id <input id="add-id" required></label>
      <label>url <input id="add-url" type="url" required placeholder="http://127.0.0.1:7004"></label>
      <label>as <select id="add-role"><option value="voter">voter (joins as a learner, promoted once caught up)</option><option value="learner">learner</option></select></label>
      <button type="submit" data-action="add">add</button></form>
    <div id="admin-result" role="status" aria-live="polite"></div>
  </div>
</div>
<div class="live-only"><button type="button" id="export-recording">export recording</button> (the last minutes, as a page that replays them) <span id="export-result" role="status"></span></div>
<section id="demo" hidden aria-label="demo controls">
  <h2>Demo controls</h2>
  <p>This cluster runs under <code>meshraft demo</code>: break it and watch it recover.</p>
  <table><thead><tr><th>member</th><th>process</th><th>do</th></tr></thead><tbody id="demo-members"></tbody></table>
  <div>links: <span id="demo-links"></span></div>
  <form id="demo-load">load: <label>writes/s <input id="demo-rate" type="number" min="0" max="500" value="50" style="width:5em"></label>
    <button type="submit" data-demo="load">start</button> <button type="button" id="demo-load-stop" data-demo="load-stop">stop</button>
    <span id="demo-load-state" role="status"></span></form>
  <div id="demo-result" role="status" aria-live="polite"></div>
  <div id="demo-problem"></div>
</section>
<h2>The last minutes: rates, leader changes, latency</h2>
<div id="chart" role="img" aria-label="commits per second"></div><div id="latency-chart" role="img" aria-label="write and read latency p99"></div><div id="health-chart" role="img" aria-label="fsync p99 and event-loop delay p99 per member"></div>
<div id="load">over the last 5 s: <span id="load-writes">writes -</span>; <span id="load-reads">reads -</span></div>
<h2>Events</h2>
<ol id="events" reversed></ol>
${REPLAY_MARKER}
<script>${UPLOT_JS}</script>
<script>${SCRIPT}</script>
</body>
</html>
`;
