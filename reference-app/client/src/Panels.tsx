import { type FormEvent, useState } from 'react';
import { api, errorText } from './api';
import type { Ctx, Msg, Room } from './Chat';
import { clock, dateTime } from './format';
import { MessageItem } from './MessageItem';

export function MembersPanel({ ctx, room, members }: { ctx: Ctx; room: Room; members: any[] }) {
  const [error, setError] = useState('');
  const amAdmin = members.some((m) => m.id === ctx.me.id && m.isAdmin) && !room.isDirect;
  const act = async (userId: number, action: string) => {
    try {
      await api('POST', `/api/rooms/${room.id}/members/${userId}/${action}`);
      setError('');
    } catch (err) {
      setError(errorText(err));
    }
  };
  return (
    <section className="panel members">
      <h3>Members</h3>
      <ul>
        {members.map((m) => (
          <li key={m.id}>
            <span className="member-name">{m.name}</span>
            {m.isAdmin && <span className="tag admin">Admin</span>}
            {amAdmin && !m.isAdmin && m.id !== ctx.me.id && (
              <span className="member-actions">
                <button type="button" className="small secondary" onClick={() => act(m.id, 'kick')}>
                  Kick
                </button>
                <button type="button" className="small secondary" onClick={() => act(m.id, 'ban')}>
                  Ban
                </button>
                <button type="button" className="small secondary" onClick={() => act(m.id, 'promote')}>
                  Promote
                </button>
              </span>
            )}
          </li>
        ))}
      </ul>
      {amAdmin && room.isPrivate && <InviteForm ctx={ctx} room={room} members={members} />}
      {error && <p className="error" role="alert">{error}</p>}
    </section>
  );
}

function InviteForm({ ctx, room, members }: { ctx: Ctx; room: Room; members: any[] }) {
  const [userId, setUserId] = useState('');
  const [status, setStatus] = useState('');
  const candidates = ctx.users.list.filter((u: any) => !members.some((m) => m.id === u.id));
  const invite = async (e: FormEvent) => {
    e.preventDefault();
    if (!userId) return setStatus('Choose a user to invite');
    try {
      await api('POST', `/api/rooms/${room.id}/invitations`, { userId: Number(userId) });
      setStatus('Invitation sent');
      setUserId('');
    } catch (err) {
      setStatus(errorText(err));
    }
  };
  return (
    <form className="invite" onSubmit={invite}>
      <label htmlFor="invite-user">Invite user</label>
      <select id="invite-user" value={userId} onChange={(e) => setUserId(e.target.value)}>
        <option value="">Choose a user</option>
        {candidates.map((u: any) => (
          <option key={u.id} value={u.id}>
            {u.name}
          </option>
        ))}
      </select>
      <button type="submit" className="small">
        Invite
      </button>
      {status && <p className="muted">{status}</p>}
    </form>
  );
}

export function ThreadPanel({ ctx, thread }: { ctx: Ctx; thread: any }) {
  const [text, setText] = useState('');
  const [error, setError] = useState('');
  const reply = (e: FormEvent) => {
    e.preventDefault();
    const trimmed = text.trim();
    if (!trimmed) return;
    if (trimmed.length > 2000) return setError('Message must be at most 2000 characters');
    const payload = { roomId: thread.parent.roomId, parentId: thread.parent.id, content: trimmed };
    ctx.socket?.emit('send_message', payload, (r: any) => setError(r?.ok ? '' : (r?.error ?? 'The reply could not be sent')));
    setText('');
  };
  return (
    <section className="panel thread">
      <div className="panel-head">
        <h3>Thread</h3>
        <button type="button" className="small secondary" aria-label="Close thread" onClick={() => ctx.setThread(null)}>
          ×
        </button>
      </div>
      <ul className="messages">
        <MessageItem ctx={ctx} m={thread.parent} inThread />
        {thread.replies.map((r: Msg) => (
          <MessageItem key={r.id} ctx={ctx} m={r} inThread />
        ))}
      </ul>
      <form className="composer" onSubmit={reply}>
        <input placeholder="Reply to thread" value={text} onChange={(e) => setText(e.target.value)} />
        <button type="submit">Reply</button>
      </form>
      {error && <p className="error" role="alert">{error}</p>}
    </section>
  );
}

export function EditHistoryPanel({ ctx, data }: { ctx: Ctx; data: any }) {
  return (
    <section className="panel history">
      <div className="panel-head">
        <h3>Edit history</h3>
        <button type="button" className="small secondary" aria-label="Close edit history" onClick={() => ctx.setEditHistory(null)}>
          ×
        </button>
      </div>
      <ol>
        {data.versions.map((v: any, i: number) => (
          <li key={i}>
            <span className="text">{v.content}</span>
            <time className="muted" dateTime={v.replacedAt} title={dateTime(v.replacedAt)}>
              {`replaced at ${clock(v.replacedAt)}`}
            </time>
          </li>
        ))}
        <li>
          <span className="text">{data.current.content}</span>
          <span className="muted">current</span>
        </li>
      </ol>
    </section>
  );
}
