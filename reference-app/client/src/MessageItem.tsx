import { type FormEvent, useEffect, useRef, useState } from 'react';
import { api, errorText } from './api';
import { bug } from './bug';
import type { Ctx, Msg } from './Chat';
import { clock, countdown } from './format';

const EMOJI = ['👍', '❤️', '😂', '😮', '😢'];

export function MessageItem({ ctx, m, inThread = false }: { ctx: Ctx; m: Msg; members?: any[]; inThread?: boolean }) {
  const [editing, setEditing] = useState(false);
  const mine = m.userId === ctx.me.id;
  const openThread = async () => {
    try {
      ctx.setEditHistory(null);
      ctx.setThread(await api('GET', `/api/messages/${m.id}/thread`));
    } catch (err) {
      ctx.fail(err);
    }
  };
  const openHistory = async () => {
    try {
      ctx.setEditHistory(await api('GET', `/api/messages/${m.id}/history`));
    } catch (err) {
      ctx.fail(err);
    }
  };
  return (
    <li className={`message${mine ? ' mine' : ''}${m.expiresAt ? ' ephemeral' : ''}`}>
      <div className="meta">
        <strong className="author">{m.authorName}</strong>
        <time className="muted" dateTime={m.createdAt}>
          {clock(m.createdAt)}
        </time>
        {m.editedAt && (
          <button type="button" className="link" onClick={openHistory}>
            (edited)
          </button>
        )}
        {m.expiresAt && <Countdown ctx={ctx} expiresAt={m.expiresAt} />}
      </div>
      {editing ? <Editor ctx={ctx} m={m} onDone={() => setEditing(false)} /> : <div className="text">{m.content}</div>}
      <Reactions ctx={ctx} m={m} />
      {!inThread && m.parentId === null && m.replyCount > 0 && (
        <button type="button" className="link replies" onClick={openThread}>
          {m.replyCount === 1 ? '1 reply' : `${m.replyCount} replies`}
        </button>
      )}
      {!inThread && m.seenBy?.length > 0 && <div className="seen muted">{`Seen by ${m.seenBy.join(', ')}`}</div>}
      <div className="actions">
        <ReactButton ctx={ctx} m={m} />
        {mine && !editing && (
          <button type="button" className="small secondary" onClick={() => setEditing(true)}>
            Edit
          </button>
        )}
        {!inThread && m.parentId === null && (
          <button type="button" className="small secondary" onClick={openThread}>
            Reply in thread
          </button>
        )}
      </div>
    </li>
  );
}

function Countdown({ ctx, expiresAt }: { ctx: Ctx; expiresAt: string }) {
  const left = Date.parse(expiresAt) - (Date.now() + ctx.offset);
  return <span className="countdown">{`Disappears in ${countdown(left)}`}</span>;
}

function Editor({ ctx, m, onDone }: { ctx: Ctx; m: Msg; onDone: () => void }) {
  const [text, setText] = useState(m.content);
  const [error, setError] = useState('');
  const save = async (e?: FormEvent) => {
    e?.preventDefault();
    const trimmed = text.trim();
    if (!trimmed) return setError('Message cannot be empty');
    if (trimmed.length > 2000) return setError('Message must be at most 2000 characters');
    if (trimmed === m.content) return onDone();
    try {
      const updated = await api('PATCH', `/api/messages/${m.id}`, { content: trimmed });
      ctx.setMessages((ms: Msg[]) => ms.map((x) => (x.id === m.id ? { ...x, ...updated } : x)));
      onDone();
    } catch (err) {
      setError(errorText(err));
    }
  };
  return (
    <form className="editor" onSubmit={save}>
      <input
        aria-label="Edit message"
        value={text}
        autoFocus
        onChange={(e) => setText(e.target.value)}
        onKeyDown={(e) => e.key === 'Escape' && onDone()}
      />
      <button type="submit" className="small">
        Save
      </button>
      <button type="button" className="small secondary" onClick={onDone}>
        Cancel
      </button>
      {error && <p className="error" role="alert">{error}</p>}
    </form>
  );
}

function Reactions({ ctx, m }: { ctx: Ctx; m: Msg }) {
  if (!m.reactions?.length) return null;
  const toggle = (emoji: string) => api('POST', `/api/messages/${m.id}/reactions`, { emoji }).catch(ctx.fail);
  return (
    <div className="reactions">
      {m.reactions.map((r: any) => (
        <button
          key={r.emoji}
          type="button"
          className={r.userIds.includes(ctx.me.id) ? 'chip mine' : 'chip'}
          title={bug('reaction-tooltip-missing') ? undefined : r.names.join(', ')}
          onClick={() => toggle(r.emoji)}
        >
          {`${r.emoji} ${r.userIds.length}`}
        </button>
      ))}
    </div>
  );
}

function ReactButton({ ctx, m }: { ctx: Ctx; m: Msg }) {
  const [open, setOpen] = useState(false);
  const box = useRef<HTMLSpanElement | null>(null);
  useEffect(() => {
    if (!open) return;
    const close = (e: MouseEvent) => {
      if (box.current && !box.current.contains(e.target as Node)) setOpen(false);
    };
    document.addEventListener('mousedown', close);
    return () => document.removeEventListener('mousedown', close);
  }, [open]);
  const choose = (emoji: string) => {
    setOpen(false);
    const already = m.reactions?.some((r: any) => r.emoji === emoji && r.userIds.includes(ctx.me.id));
    if (!already) api('POST', `/api/messages/${m.id}/reactions`, { emoji }).catch(ctx.fail);
  };
  return (
    <span className="react" ref={box}>
      <button type="button" className="small secondary" onClick={() => setOpen((o) => !o)} aria-expanded={open}>
        React
      </button>
      {open && (
        <span className="picker" role="group" aria-label="Choose a reaction">
          {EMOJI.map((e) => (
            <button key={e} type="button" onClick={() => choose(e)}>
              {e}
            </button>
          ))}
        </span>
      )}
    </span>
  );
}
