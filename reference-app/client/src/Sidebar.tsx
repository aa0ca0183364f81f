import { type FormEvent, useState } from 'react';
import { api, errorText } from './api';
import type { Ctx, Room } from './Chat';

export function Sidebar({ ctx, openId, invitations, joinError }: { ctx: Ctx; openId: number | null; invitations: any[]; joinError: string }) {
  const named = ctx.rooms.filter((r: Room) => !r.isDirect);
  const direct = ctx.rooms.filter((r: Room) => r.isDirect);
  return (
    <nav className="sidebar" aria-label="Rooms">
      <CreateRoom ctx={ctx} />
      {invitations.length > 0 && (
        <section className="invitations">
          <h2>Invitations</h2>
          <ul>
            {invitations.map((inv) => (
              <Invitation key={inv.roomId} ctx={ctx} inv={inv} />
            ))}
          </ul>
        </section>
      )}
      <section>
        <h2>Rooms</h2>
        <ul className="room-list">
          {named.map((r: Room) => (
            <RoomEntry key={r.id} ctx={ctx} room={r} open={r.id === openId} />
          ))}
        </ul>
        {joinError && <p className="error" role="alert">{joinError}</p>}
      </section>
      <section>
        <h2>Direct messages</h2>
        <ul className="room-list">
          {direct.map((r: Room) => (
            <RoomEntry key={r.id} ctx={ctx} room={r} open={r.id === openId} />
          ))}
        </ul>
      </section>
    </nav>
  );
}

function CreateRoom({ ctx }: { ctx: Ctx }) {
  const [name, setName] = useState('');
  const [isPrivate, setPrivate] = useState(false);
  const [error, setError] = useState('');
  const submit = async (e: FormEvent) => {
    e.preventDefault();
    const trimmed = name.trim();
    if (!trimmed) return setError('Room name is required');
    if (trimmed.length > 48) return setError('Room name must be at most 48 characters');
    try {
      const room = await api('POST', '/api/rooms', { name: trimmed, isPrivate });
      setError('');
      setName('');
      setPrivate(false);
      await ctx.refreshRooms();
      ctx.openRoom(room.id);
    } catch (err) {
      setError(errorText(err));
    }
  };
  return (
    <form className="create-room" onSubmit={submit}>
      <input placeholder="New room name" value={name} onChange={(e) => setName(e.target.value)} />
      <div className="row">
        <input id="private-room" type="checkbox" checked={isPrivate} onChange={(e) => setPrivate(e.target.checked)} />
        <label htmlFor="private-room">Private room</label>
      </div>
      <button type="submit">Create room</button>
      {error && <p className="error" role="alert">{error}</p>}
    </form>
  );
}

export async function joinRoom(ctx: Ctx, roomId: number) {
  ctx.setNotice('');
  try {
    await api('POST', `/api/rooms/${roomId}/join`);
    await ctx.refreshRooms();
    ctx.openRoom(roomId);
  } catch (err) {
    ctx.setJoinError(errorText(err));
  }
}

function RoomEntry({ ctx, room, open }: { ctx: Ctx; room: Room; open: boolean }) {
  const draft = (ctx.drafts[room.id] ?? '').trim() !== '';
  const showUnread = room.isMember && room.unread > 0 && !open;
  return (
    <li className={open ? 'room open' : 'room'}>
      <button type="button" className="room-name" aria-current={open ? 'true' : undefined} onClick={() => ctx.openRoom(room.id)}>
        {room.name}
      </button>
      {room.isPrivate && !room.isDirect && <span className="tag muted">private</span>}
      {draft && <span className="tag draft">Draft</span>}
      {room.activity === 'hot' && <span className="tag hot">Hot</span>}
      {room.activity === 'active' && <span className="tag active">Active</span>}
      {showUnread && (
        <span className="badge" aria-label={`${room.unread} unread`} title={`${room.unread} unread`}>
          {room.unread > 99 ? '99+' : room.unread}
        </span>
      )}
      {!room.isMember && (
        <button type="button" className="small" onClick={() => joinRoom(ctx, room.id)}>
          Join
        </button>
      )}
    </li>
  );
}

function Invitation({ ctx, inv }: { ctx: Ctx; inv: any }) {
  const answer = async (accept: boolean) => {
    try {
      await api('POST', `/api/invitations/${inv.roomId}/${accept ? 'accept' : 'decline'}`);
      await ctx.refreshRooms();
    } catch (err) {
      ctx.setJoinError(errorText(err));
    }
  };
  return (
    <li className="invitation">
      <span>{`${inv.inviterName} invited you to ${inv.roomName}`}</span>
      <button type="button" className="small" onClick={() => answer(true)}>
        Accept
      </button>
      <button type="button" className="small secondary" onClick={() => answer(false)}>
        Decline
      </button>
    </li>
  );
}
