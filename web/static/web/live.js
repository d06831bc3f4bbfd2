// Live pages: the notification log over /ws/notifications/, and chat over /ws/conversations/<id>/.
//
// Notifications: each frame {seq, event, payload} is announced as a DOM event "vetted:<event>"
// on <body>; page sections re-fetch themselves with htmx on the events they show
// (hx-trigger="vetted:invitation.created from:body"). The last seq seen is kept for the tab,
// so a reconnect asks for everything after it (?after=N) and nothing is missed.
// Chat: sync from the newest message shown, append each message once (by seq), send over the
// socket with a client_msg_id, so a resend after a reconnect is not stored twice.
(function () {
  "use strict";

  function socketUrl(path, query) {
    const scheme = location.protocol === "https:" ? "wss://" : "ws://";
    return scheme + location.host + path + (query || "");
  }

  // Reconnect with backoff: 1 s, doubling, at most 30 s (docs/chat.md).
  function follow(path, query, handlers) {
    let delay = 1000;
    let socket = null;
    let opened = false; // whether any connection got through: a socket never accepted is not retried
    function open() {
      socket = new WebSocket(socketUrl(path, query()));
      socket.addEventListener("open", function () {
        opened = true;
        delay = 1000;
        if (handlers.open) handlers.open(socket);
      });
      socket.addEventListener("message", function (frame) {
        handlers.message(JSON.parse(frame.data), socket);
      });
      socket.addEventListener("close", function (closed) {
        if (closed.code === 4003 || closed.code === 4004) return; // not allowed, or gone: stay closed
        if (closed.code === 1006 && !opened) return; // refused at the handshake (403): retrying will not help
        setTimeout(open, delay);
        delay = Math.min(delay * 2, 30000);
      });
    }
    open();
    return function () { return socket; };
  }

  function notifications() {
    const path = document.body.dataset.notifications;
    if (!path) return;
    const key = "vetted.notifications.after";
    const bell = document.querySelector("[data-bell]");
    let unseen = bell ? Number(bell.textContent) || 0 : 0;
    follow(path, function () {
      const after = sessionStorage.getItem(key);
      return after ? "?after=" + after : "";
    }, {
      message: function (frame) {
        if (frame.event === "hello") {
          // Where the stream starts when this tab has seen nothing yet.
          if (!sessionStorage.getItem(key)) sessionStorage.setItem(key, String(frame.payload.seq));
          return;
        }
        if (frame.seq === undefined) return; // an error frame
        const last = Number(sessionStorage.getItem(key) || 0);
        if (frame.seq <= last) return;
        sessionStorage.setItem(key, String(frame.seq));
        unseen += 1;
        if (bell) bell.textContent = String(unseen);
        document.body.dispatchEvent(new CustomEvent("vetted:" + frame.event, { detail: frame }));
        document.body.dispatchEvent(new CustomEvent("vetted:notification", { detail: frame }));
      },
    });
  }

  // A system message ("hired", "milestone.funded", ...) in words, with the title it names.
  function describe(message) {
    const payload = message.payload || {};
    const event = String(payload.event || message.kind).replace(/[._]/g, " ");
    const words = event.charAt(0).toUpperCase() + event.slice(1);
    return payload.title ? words + ": " + payload.title : words;
  }

  function chat() {
    const list = document.getElementById("chat");
    if (!list) return;
    const form = document.getElementById("chat-form");
    const problem = document.createElement("p");
    problem.className = "error";
    problem.setAttribute("role", "alert");
    form.prepend(problem);
    let sending = null; // the client_msg_id sent and not yet acknowledged
    const me = Number(list.dataset.me);
    let after = Number(list.dataset.after || 0);
    function add(message) {
      if (message.seq <= after) return;
      after = message.seq;
      const item = document.createElement("li");
      item.dataset.seq = String(message.seq);
      item.textContent = message.kind === "text" ? message.body : describe(message);
      if (message.sender_id === me) item.classList.add("mine");
      if (message.kind !== "text") item.classList.add("system");
      list.appendChild(item);
      item.scrollIntoView({ block: "nearest" });
    }
    const current = follow(list.dataset.chat, function () { return ""; }, {
      open: function (socket) { socket.send(JSON.stringify({ type: "sync", after: after })); },
      message: function (frame, socket) {
        if (frame.type === "message") add(frame.message);
        if (frame.type === "ack" && frame.client_msg_id === sending) {
          sending = null;
          form.elements.body.value = ""; // stored: only now is the text let go
          problem.textContent = "";
        }
        if (frame.type === "error") problem.textContent = frame.detail || "The message was not sent.";
        if (frame.type === "sync") {
          frame.messages.forEach(add);
          if (frame.has_more) socket.send(JSON.stringify({ type: "sync", after: after }));
        }
      },
    });
    form.addEventListener("submit", function (submitted) {
      const socket = current();
      const body = form.elements.body.value.trim();
      if (!socket || socket.readyState !== WebSocket.OPEN || !body) return; // falls back to posting the form
      submitted.preventDefault();
      const id = "web-" + Date.now().toString(36) + "-" + Math.random().toString(36).slice(2, 8);
      sending = id;
      socket.send(JSON.stringify({ type: "send", body: body, client_msg_id: id }));
    });
  }

  // The request page's countdown: the deadline is the server's; the seconds tick here.
  function countdowns() {
    function tick() {
      document.querySelectorAll("[data-countdown]").forEach(function (node) {
        const left = Math.max(0, Math.round((Date.parse(node.dataset.countdown) - Date.now()) / 1000));
        const h = Math.floor(left / 3600), m = Math.floor((left % 3600) / 60), s = left % 60;
        node.textContent = h + " h " + String(m).padStart(2, "0") + " min " + String(s).padStart(2, "0") + " s";
      });
    }
    tick();
    setInterval(tick, 1000);
  }

  document.addEventListener("DOMContentLoaded", function () {
    notifications();
    chat();
    countdowns();
  });
})();
