import { type FormEvent, useEffect, useRef, useState } from 'react';
import { api, errorText } from './api';
import { bug } from './bug';
import type { Ctx, Msg, Room } from './Chat';
import { dateTime, typingLine } from './format';
import { MessageItem } from './MessageItem';
import { EditHistoryPanel, MembersPanel, ThreadPanel } from './Panels';
import { joinRoom } from './Sidebar';

interface Props {
  ctx: Ctx;
  room: Room | null;
  messages: Msg[];
  members: any[];
  scheduled: any[];
  thread: any;
  editHistory: any;
  typists: string[];
  notice: string;
}

export function RoomView(p: Props) {
  const { ctx, room } = p;
  const noticeLine = p.notice && (
    <p className="notice" role="status">
      {p.notice}
    </p>
  );
  if (!room) {
    return (
      <main className="main empty">
        {noticeLine}
        <p className="muted">Pick a room on the left, or create one.</p>
      </main>
    );
  }
  const leave = async () => {
    try {
      await api('POST', `/api/rooms/${room.id}/leave`);
      await ctx.refreshRooms();
      // Seeded bug: the room's view stays as it was, still showing (and receiving) messages.
      if (!bug('leave-still-receives')) ctx.openRoom(room.id);
    } catch (err) {
      ctx.fail(err);
    }
  };
  return (
    <main className="main">
      <div className="room-column">
        <div className="room-header">
          <h2>{room.name}</h2>
          {room.isMember && !room.isDirect && (
            <button type="button" className="secondary" onClick={leave}>
              Leave
            </button>
          )}
        </div>
        {noticeLine}
        {room.isMember ? (
          <>
            <MessageList ctx={ctx} messages={p.messages} members={p.members} />
            <div className="typing" aria-live="polite">
              {typingLine(p.typists)}
            </div>
            <Composer ctx={ctx} room={room} />
            <ScheduledList ctx={ctx} scheduled={p.scheduled} />
          </>
        ) : (
          <div className="join-prompt">
            {bug('leave-still-receives') && <MessageList ctx={ctx} messages={p.messages} members={p.members} />}
            <p className="muted">You are not a member of this room.</p>
            <button type="button" onClick={() => joinRoom(ctx, room.id)}>
              Join
            </button>
          </div>
        )}
      </div>
      {room.isMember && (
        <div className="room-side">
          {p.editHistory && <EditHistoryPanel ctx={ctx} data={p.editHistory} />}
          {p.thread && <ThreadPanel ctx={ctx} thread={p.thread} />}
          <MembersPanel ctx={ctx} room={room} members={p.members} />
        </div>
      )}
    </main>
  );
}

function MessageList({ ctx, messages, members }: { ctx: Ctx; messages: Msg[]; members: any[] }) {
  const end = useRef<HTMLLIElement | null>(null);
  const last = messages[messages.length - 1]?.id;
  useEffect(() => {
    end.current?.scrollIntoView({ block: 'end' });
  }, [last]);
  return (
    <ul className="messages" aria-label="Messages">
      {messages.map((m) => (
        <MessageItem key={m.id} ctx={ctx} m={m} members={members} />
      ))}
      <li ref={end} className="end" aria-hidden="true" />
    </ul>
  );
}

function Composer({ ctx, room }: { ctx: Ctx; room: Room }) {
  const text = ctx.drafts[room.id] ?? '';
  const [lifetime, setLifetime] = useState('0');
  const [error, setError] = useState('');
  const [scheduling, setScheduling] = useState(false);
  const [sendAt, setSendAt] = useState('');
  const lastTyping = useRef<Record<number, number>>({});
  const saveTimer = useRef<ReturnType<typeof setTimeout> | undefined>(undefined);

  const saveDraft = (value: string) => {
    clearTimeout(saveTimer.current);
    saveTimer.current = setTimeout(() => ctx.socket?.emit('draft', { roomId: room.id, content: value }), 400);
  };
  const onChange = (value: string) => {
    ctx.live.current.lastKey = { roomId: room.id, at: Date.now() };
    ctx.setDrafts((d: Record<number, string>) => ({ ...d, [room.id]: value }));
    saveDraft(value);
    const now = Date.now();
    if (value !== '' && now - (lastTyping.current[room.id] ?? 0) >= 2000) {
      lastTyping.current[room.id] = now;
      ctx.socket?.emit('typing', { roomId: room.id });
    }
  };
  const clearInput = () => {
    clearTimeout(saveTimer.current);
    lastTyping.current[room.id] = 0;
    ctx.setDrafts((d: Record<number, string>) => ({ ...d, [room.id]: '' }));
  };
  const send = (e?: FormEvent) => {
    e?.preventDefault();
    const trimmed = text.trim();
    if (!trimmed) return;
    if (trimmed.length > 2000) return setError('Message must be at most 2000 characters');
    ctx.socket?.emit('stop_typing', { roomId: room.id });
    ctx.socket?.emit('send_message', { roomId: room.id, content: trimmed, lifetimeSeconds: Number(lifetime) }, (r: any) => {
      if (r?.ok) {
        setError('');
      } else {
        setError(r?.error ?? 'The message could not be sent');
        ctx.setDrafts((d: Record<number, string>) => ({ ...d, [room.id]: text }));
      }
    });
    clearInput();
  };
  const schedule = async (e: FormEvent) => {
    e.preventDefault();
    const trimmed = text.trim();
    if (!trimmed) return setError('Type the message to schedule first');
    const when = new Date(sendAt);
    if (Number.isNaN(when.getTime())) return setError('Choose a time in the future');
    // The input is cleared at once (as for Send) and given back if the server refuses.
    clearInput();
    setSendAt('');
    try {
      await api('POST', `/api/rooms/${room.id}/scheduled`, { content: trimmed, sendAt: when.toISOString() });
      setError('');
      ctx.socket?.emit('draft', { roomId: room.id, content: '' });
    } catch (err) {
      setError(errorText(err));
      setSendAt(sendAt);
      ctx.setDrafts((d: Record<number, string>) => (d[room.id] ? d : { ...d, [room.id]: text }));
    }
  };
  return (
    <div className="composer-wrap">
      <form className="composer" onSubmit={send}>
        <input placeholder="Type a message" value={text} onChange={(e) => onChange(e.target.value)} />
        <label htmlFor="lifetime">Message lifetime</label>
        <select id="lifetime" value={lifetime} onChange={(e) => setLifetime(e.target.value)}>
          <option value="0">Keep</option>
          <option value="30">30 seconds</option>
          <option value="60">1 minute</option>
          <option value="300">5 minutes</option>
        </select>
        <button type="submit">Send</button>
        <button type="button" className="secondary" onClick={() => setScheduling(true)}>
          Schedule
        </button>
      </form>
      {scheduling && (
        <form className="schedule-form" onSubmit={schedule}>
          <label htmlFor="send-at">Send at</label>
          <input id="send-at" type="datetime-local" step="1" value={sendAt} onChange={(e) => setSendAt(e.target.value)} />
          <button type="submit">Schedule message</button>
        </form>
      )}
      {error && (
        <p className="error" role="alert">
          {error}
        </p>
      )}
    </div>
  );
}

function ScheduledList({ ctx, scheduled }: { ctx: Ctx; scheduled: any[] }) {
  if (scheduled.length === 0) return null;
  const cancel = async (id: number) => {
    ctx.setScheduled((list: any[]) => list.filter((s) => s.id !== id));
    await api('DELETE', `/api/scheduled/${id}`).catch(ctx.fail);
  };
  return (
    <section className="scheduled">
      <h3>Scheduled messages</h3>
      <ul>
        {scheduled.map((s) => (
          <li key={s.id}>
            <span className="text">{s.content}</span>
            <time className="muted">{dateTime(s.sendAt)}</time>
            <button type="button" className="small secondary" onClick={() => cancel(s.id)}>
              Cancel
            </button>
          </li>
        ))}
      </ul>
    </section>
  );
}
