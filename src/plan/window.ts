import type { WindowSettings } from '../config/types';

const formats = new Map<string, Intl.DateTimeFormat>();

/** Day of the week (0 = Sunday) and minute of the day of `at` in time zone `tz`. */
function local(at: Date, tz: string): { day: number; minute: number } {
  let f = formats.get(tz);
  if (!f) {
    f = new Intl.DateTimeFormat('en-US', {
      timeZone: tz,
      weekday: 'short',
      hour: '2-digit',
      minute: '2-digit',
      hourCycle: 'h23',
    });
    formats.set(tz, f);
  }
  const parts = f.formatToParts(at);
  const get = (t: string) => parts.find((p) => p.type === t)?.value ?? '';
  const day = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'].indexOf(get('weekday'));
  return { day, minute: Number(get('hour')) * 60 + Number(get('minute')) };
}

/**
 * Whether `at` lies inside the window. A window whose `to` is before its `from` spans midnight and belongs to the
 * day it opens on (fri 22:00-02:00 is open on Saturday at 01:00).
 */
export function inWindow(w: WindowSettings, at: Date): boolean {
  const { day, minute } = local(at, w.tz);
  if (w.fromMinutes < w.toMinutes)
    return w.days.includes(day) && minute >= w.fromMinutes && minute < w.toMinutes;
  if (minute >= w.fromMinutes) return w.days.includes(day);
  return minute < w.toMinutes && w.days.includes((day + 6) % 7);
}

/** When the window next opens at or after `from` (to the minute), or undefined if it never does within two weeks. */
export function nextOpening(w: WindowSettings, from: Date): Date | undefined {
  const start = new Date(Math.ceil(from.getTime() / 60_000) * 60_000);
  if (inWindow(w, start)) return start;
  for (let m = 1; m <= 14 * 24 * 60; m++) {
    const t = new Date(start.getTime() + m * 60_000);
    if (inWindow(w, t)) return t;
  }
  return undefined;
}
