import type { ClassAd } from './classad.ts';

/**
 * TEST STAND-IN for HTCondor's CronTab (src/condor_utils/condor_crontab.cpp, HTCondor 25.x):
 * the schedule of a job with cron_* settings, and the next time it is due. The schedd
 * (schedd.cpp, Scheduler::calculateCronTabSchedule) stores that time as the job's DeferralTime
 * whenever the job is idle and has none (or the one it has passed), and after each run.
 *
 * As CronTab does:
 *  - the fields are the string attributes CronMinute, CronHour, CronDayOfMonth, CronMonth and
 *    CronDayOfWeek; a field that is absent or not a string is the wildcard (`*`);
 *  - validateParameter: only digits, `,` `-` `.` `/` `*` and spaces are allowed
 *    ("Invalid parameter value '...' for CronMinute");
 *  - expandParameter: spaces dropped, `,`-separated tokens; `x/n` keeps the values of the range
 *    divisible by n (so `5-59/15` is 15,30,45, not 5,20,...; a step of 0 is invalid); `a-b`
 *    is clamped to the field's limits; `*` is the whole range, except for the day of the week
 *    where it means "no restriction"; a single value outside the limits is ignored, which
 *    leaves the whole range; 7 is Sunday (0); a field other than the day of the week that
 *    expands to nothing is invalid ("Invalid cron attribute: ...");
 *  - nextRunTime(now): now rounded up to the next whole minute (so strictly after now), then
 *    the first matching minute in local time, searching months, days, hours and minutes in
 *    order (matchFields), the day of the week adding its days of the month to the day field;
 *    when the day-of-month field is the wildcard but the day of the week is not, CronTab seeds
 *    the day list with 31 zeros, a quirk that, once the search moves to a later month, picks
 *    day 0 and so a time in the past, which CronTab replaces with "now + 120 seconds".
 */

export const CRON_ATTRIBUTES = ['CronMinute', 'CronHour', 'CronDayOfMonth', 'CronMonth', 'CronDayOfWeek'] as const;

const MIN = [0, 0, 1, 1, 0];
const MAX = [59, 23, 31, 12, 7];
const MINUTES = 0;
const HOURS = 1;
const DOM = 2;
const MONTHS = 3;
const DOW = 4;
const DOM_MAX = 31;
const DOW_MAX = 7;
const INVALID_CHARACTER = /[^/0-9,\-.* ]/;
/** How many years CronTab's search may roll over before the stand-in calls the schedule impossible (CronTab would recurse forever). */
const MAX_YEARS = 30;

/** Whether the ad has a cron schedule (CronTab::needsCronTab: any of the attributes, of any type). */
export function needsCronTab(ad: ClassAd): boolean {
  return CRON_ATTRIBUTES.some((name) => ad.has(name));
}

export class CronTab {
  private constructor(private readonly ranges: number[][]) {}

  /** The job's schedule, or the error CronTab reports for it. */
  static fromAd(ad: ClassAd): CronTab | { error: string } {
    const params = CRON_ATTRIBUTES.map((name) => {
      const v = ad.evaluate(name);
      return v.type === 'string' ? v.value : undefined;
    });
    // CronTab::validate: every field given, each error reported.
    let errors = '';
    params.forEach((p, i) => {
      if (p !== undefined && INVALID_CHARACTER.test(p)) errors += `Invalid parameter value '${p}' for ${CRON_ATTRIBUTES[i]}`;
    });
    if (errors) return { error: errors };
    const ranges: number[][] = [];
    for (let i = 0; i < CRON_ATTRIBUTES.length; i++) {
      const range = expand(params[i] ?? '*', i);
      if (typeof range === 'string') return { error: range };
      ranges.push(range);
    }
    return new CronTab(ranges);
  }

  /** CronTab::nextRunTime: the next run (epoch seconds) strictly after `now`, or undefined when there is none. */
  nextRunTime(now: number): number | undefined {
    const timestamp = now + (60 - (((now % 60) + 60) % 60));
    const t = new Date(timestamp * 1000);
    const current = [t.getMinutes(), t.getHours(), t.getDate(), t.getMonth() + 1, t.getDay()];
    const match = [-1, -1, -1, -1, -1, t.getFullYear()];
    if (!this.matchFields(current, match, MONTHS, false, 0)) return undefined;
    const runtime = Math.floor(new Date(match[5]!, match[MONTHS]! - 1, match[DOM]!, match[HOURS]!, match[MINUTES]!, 0).getTime() / 1000);
    // "Generated a runtime that is in the past ..., scheduling now"
    return runtime < timestamp ? now + 120 : runtime;
  }

  private matchFields(current: number[], match: number[], index: number, useFirst: boolean, years: number): boolean {
    let nextUseFirst = useFirst;
    match[index] = -1;
    let range = this.ranges[index]!;
    if (index === DOM) {
      const days = this.ranges[DOM]!;
      const weekdays = this.ranges[DOW]!;
      if (days.length === DOM_MAX) range = weekdays.length === DOW_MAX || weekdays.length === 0 ? [...days] : new Array<number>(DOM_MAX).fill(0);
      else range = [...days];
      const firstDay = new Date(match[5]!, match[MONTHS]! - 1, 1).getDay();
      for (const weekday of weekdays) {
        for (let day = weekday - firstDay + 1; day <= DOM_MAX; day += 7) {
          if (day > 0 && !range.includes(day)) range.push(day);
        }
      }
      range.sort((a, b) => a - b);
    }
    let found = false;
    for (const value of range) {
      if (!(useFirst || value >= current[index]!)) continue;
      if (value > current[index]!) nextUseFirst = true;
      if (index === DOM && value > daysInMonth(match[MONTHS]!, match[5]!)) continue;
      match[index] = value;
      if (index === MINUTES) {
        found = true;
        break;
      }
      found = this.matchFields(current, match, index - 1, nextUseFirst, years);
      nextUseFirst = true;
      if (found) break;
    }
    if (!found && index === MONTHS && years < MAX_YEARS) {
      match[5]!++;
      found = this.matchFields(current, match, index, true, years + 1);
    }
    return found;
  }
}

function daysInMonth(month: number, year: number): number {
  return new Date(year, month, 0).getDate();
}

/** C atoi: leading white space, an optional sign, digits; 0 when there are none. */
function atoi(s: string): number {
  const m = /^\s*([+-]?\d+)/.exec(s);
  return m ? Number(m[1]) : 0;
}

/** CronTab::expandParameter: the sorted values of one field, or the error. */
function expand(param: string, index: number): number[] | string {
  const min = MIN[index]!;
  const max = MAX[index]!;
  const text = param.replaceAll(' ', '');
  const list: number[] = [];
  for (let token of text.split(',')) {
    if (token === '') continue;
    let lo = min;
    let hi = max;
    let step = 1;
    const slash = token.indexOf('/');
    if (slash >= 0) {
      step = atoi(token.slice(slash + 1));
      if (step === 0) return `Invalid cron attribute: ${param}`;
      token = token.slice(0, slash);
    }
    const dash = token.indexOf('-');
    if (dash >= 0) {
      hi = Math.min(atoi(token.slice(dash + 1)), max);
      lo = Math.max(atoi(token.slice(0, dash)), min);
    } else if (token.includes('*')) {
      if (index === DOW) continue;
    } else {
      const value = atoi(token);
      if (value >= min && value <= max) lo = hi = value;
    }
    for (let v = lo; v <= hi; v++) {
      const value = index === DOW && v === DOW_MAX ? 0 : v;
      if (value % step === 0 && !list.includes(value)) list.push(value);
    }
  }
  list.sort((a, b) => a - b);
  if (index !== DOW && list.length === 0) return `Invalid cron attribute: ${param}`;
  return list;
}
