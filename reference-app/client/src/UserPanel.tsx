import { api } from './api';
import type { Ctx } from './Chat';
import { ago, STATUS_TEXT } from './format';

export function UserPanel({ ctx }: { ctx: Ctx }) {
  const { list } = ctx.users;
  const serverNow = Date.now() + ctx.offset;
  const online = list.filter((u: any) => u.online);
  const offline = list.filter((u: any) => !u.online);
  const message = async (userId: number) => {
    try {
      const room = await api('POST', '/api/direct', { userId });
      await ctx.refreshRooms();
      ctx.openRoom(room.id);
    } catch (err) {
      ctx.fail(err);
    }
  };
  const messageButton = (u: any) =>
    u.id !== ctx.me.id && (
      <button type="button" className="small" onClick={() => message(u.id)}>
        Message
      </button>
    );
  return (
    <aside className="user-panel" aria-label="Users">
      <section>
        <h2>Online</h2>
        <ul>
          {online.map((u: any) => (
            <li key={u.id} className="user">
              <span className={`dot ${u.status}`} aria-hidden="true" />
              <span className="user-name">{u.name}</span>
              <span className="status muted">{STATUS_TEXT[u.status]}</span>
              {messageButton(u)}
            </li>
          ))}
        </ul>
      </section>
      <section>
        <h2>Offline</h2>
        <ul>
          {offline.map((u: any) => (
            <li key={u.id} className="user">
              <span className="dot offline" aria-hidden="true" />
              <span className="user-name">{u.name}</span>
              <span className="status muted">{`Last active ${ago(Math.max(0, (serverNow - Date.parse(u.lastActiveAt)) / 1000))}`}</span>
              {messageButton(u)}
            </li>
          ))}
        </ul>
      </section>
    </aside>
  );
}
