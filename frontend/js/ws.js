// The session's events over a WebSocket: resumes with ?after=SEQ, reconnects with back-off.
import { token } from "./api.js";

export function connectEvents(sessionId, { onEvent, onState }) {
  let after = 0;
  let delay = 500;
  let socket = null;
  let closed = false;
  let timer = null;

  function open() {
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    const query = new URLSearchParams({ after: String(after) });
    if (token()) query.set("token", token());
    socket = new WebSocket(`${scheme}://${location.host}/api/sessions/${sessionId}/ws?${query}`);
    onState("connecting");
    socket.onopen = () => { delay = 500; onState("live"); };
    socket.onmessage = (message) => {
      const event = JSON.parse(message.data);
      if (typeof event.seq === "number") after = Math.max(after, event.seq);
      onEvent(event);
    };
    socket.onclose = (close) => {
      if (closed) return;
      if (close.code === 4404 || close.code === 4401) { onState("closed"); return; }
      onState("reconnecting");
      timer = setTimeout(open, delay);
      delay = Math.min(delay * 2, 10000);
    };
  }

  open();
  return {
    close() {
      closed = true;
      clearTimeout(timer);
      if (socket) socket.close();
    },
  };
}
