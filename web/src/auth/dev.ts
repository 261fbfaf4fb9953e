// Dev sign-in: POST /dev/token {userId} -> a signed HS256 JWT (AUTH_MODE=dev only).
import { devToken } from "../api";
import { setSession, type Session } from "./session";

export async function devSignIn(userId: string): Promise<Session> {
  const name = userId.trim();
  const t = await devToken(name);
  const s: Session = {
    mode: "dev",
    userId: name,
    accessToken: t.accessToken,
    expiresAt: Date.now() + t.expiresIn * 1000,
  };
  setSession(s);
  return s;
}
