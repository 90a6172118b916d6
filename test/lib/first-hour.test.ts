/**
 * Quiet after a first deploy, true from then on: every alarm of every variant (test/support/alarm-variants.ts)
 * is replayed minute by minute through the first hours of a healthy first deploy with CloudWatch's
 * evaluation rules (test/support/alarm-replay.ts: periods, evaluation periods, datapoints to alarm,
 * treatMissingData, metric math), over the metrics such a deploy produces: the deploy's registration at
 * minute 0, the canary's first run and arrival within one interval and every interval after, the first
 * sweep within the hour and every hour after, and nothing else (no error, no refusal). No alarm may go
 * to ALARM. Then the same alarms must go to ALARM when the canary's path or a schedule breaks after the
 * first deploy, or is broken from it.
 *
 * What CloudWatch does not document is tried both ways or over a range: how many periods beyond the
 * evaluation periods it retrieves, what FILL makes of a series with no datapoint in range, how late a
 * datapoint arrives, and when a rate schedule first fires after its rule is created.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import {
  type AlarmModel,
  type AlarmState,
  alarmModel,
  type MetricRef,
  replay,
} from '../support/alarm-replay.ts';
import { type AlarmVariant, alarmVariants } from '../support/alarm-variants.ts';

/** Minutes replayed: the first hour, and on to three, which an hourly alarm's two periods need. */
const MINUTES = 180;

interface World {
  /** Minutes (from the deploy) at which each thing happened. */
  readonly canaryRuns: readonly number[];
  readonly arrivals: readonly number[];
  readonly sweeps: readonly number[];
  readonly deploys: readonly number[];
}

const every = (first: number, interval: number, until = 10_000) =>
  Array.from(
    { length: Math.max(0, Math.floor((until - first) / interval) + 1) },
    (_, i) => first + i * interval,
  );

/** Which of the world's series a metric of the template is (by the resource its dimension names). */
function sourceOf(world: World) {
  const at = (minutes: readonly number[]) => {
    const set = new Set(minutes);
    return (minute: number) => (set.has(minute) ? 1 : undefined);
  };
  return (metric: MetricRef) => {
    const dimension = Object.values(metric.dimensions).join(' ');
    const is = (prefix: string) => new RegExp(`${prefix}[0-9A-F]{8}"`).test(dimension);
    if (metric.metricName !== 'Invocations') return undefined; // healthy: no error, no refusal, no backlog
    if (metric.namespace === 'AWS/Lambda' && is('CanaryFunction')) return at(world.canaryRuns);
    if (metric.namespace === 'AWS/Lambda' && is('CanaryArrival')) return at(world.arrivals);
    if (metric.namespace === 'AWS/Lambda' && is('FleetRegistrar')) return at(world.deploys);
    if (metric.namespace === 'AWS/Events' && is('FleetSweep')) return at(world.sweeps);
    return undefined;
  };
}

/**
 * A healthy first deploy: the canary's first run after `canaryFirst` minutes, each arrival `arrivalLag`
 * minutes after its run (a run at :59 arrives in the next minute; an arrival's datapoint may also be
 * published later than the run's), the first sweep after `sweepFirst`.
 */
function healthy(
  canaryFirst: number,
  canaryInterval: number,
  sweepFirst: number,
  sweepInterval: number,
  arrivalLag = 0,
): World {
  const runs = every(canaryFirst, canaryInterval);
  return {
    canaryRuns: runs,
    arrivals: runs.map((minute) => minute + arrivalLag),
    sweeps: every(sweepFirst, sweepInterval),
    deploys: [0],
  };
}

const OPTIONS = [1, 3].flatMap((extraPeriods) =>
  (['dense', 'empty'] as const).flatMap((fillEmpty) =>
    [0, 2].map((latencyMinutes) => ({ extraPeriods, fillEmpty, latencyMinutes })),
  ),
);

function states(alarm: AlarmModel, world: World, minutes = MINUTES) {
  return OPTIONS.map((options) => ({ options, states: replay(alarm, sourceOf(world), minutes, options) }));
}

/** The first minute the alarm is in ALARM under every option, and whether it then stays there. */
function firstAlarm(runs: ReturnType<typeof states>) {
  return runs.map(({ options, states }) => {
    const first = states.indexOf('ALARM');
    return { options, first, stays: first >= 0 && states.slice(first).every((s) => s === 'ALARM') };
  });
}

let variants: AlarmVariant[];
beforeAll(() => {
  variants = alarmVariants();
}, 120_000);

describe('a healthy first deploy', () => {
  it('the templates have the alarms this replay is about', () => {
    const names = new Set(variants.flatMap((v) => v.alarms.map((a) => a.name)));
    for (const name of ['CanaryArrivals', 'SweepMissing', 'WrongSecrets', 'PresenceStateBacklog'])
      expect(names).toContain(name);
    // No alarm of any variant treats missing data as breaching: it would fire before the first datapoint.
    for (const v of variants)
      for (const a of v.alarms) {
        expect(a.properties.TreatMissingData, `${v.variant} ${a.name}`).not.toBe('breaching');
        // Nor does any notify its topic as it leaves INSUFFICIENT_DATA, as every new alarm does after a
        // deploy: recoveries come from a rule on OK after ALARM (test/lib/monitoring.test.ts).
        expect(a.properties.OKActions, `${v.variant} ${a.name}`).toBeUndefined();
        expect(a.properties.InsufficientDataActions, `${v.variant} ${a.name}`).toBeUndefined();
      }
  });

  it.each([
    ['the first canary run and sweep as soon as can be', 1, 1, 0],
    ['the first canary run one interval after the deploy, the first sweep an hour after', 5, 60, 0],
    ['each arrival in the minute after its run', 5, 60, 1],
    ['each arrival counted two minutes after its run', 1, 1, 2],
    ['each arrival counted four minutes after its run', 5, 60, 4],
  ])(
    'no alarm of any variant goes to ALARM in the first three hours, minute by minute (%s)',
    (_, canaryFirst, sweepFirst, arrivalLag) => {
      const world = healthy(canaryFirst, 5, sweepFirst, 60, arrivalLag);
      const alarmed: string[] = [];
      for (const v of variants) {
        for (const a of v.alarms) {
          for (const { options, states: s } of states(alarmModel(a.logicalId, a.properties), world)) {
            const minute = s.indexOf('ALARM');
            if (minute >= 0)
              alarmed.push(`${v.variant} ${a.name} at minute ${minute} (${JSON.stringify(options)})`);
          }
        }
      }
      expect(alarmed).toEqual([]);
    },
  );

  it('the alarms on silence stay quiet, not OK by default, until their first datapoint (INSUFFICIENT_DATA, which notifies nobody)', () => {
    const v = variants[0] as AlarmVariant;
    const canary = v.alarms.find((a) => a.name === 'CanaryArrivals');
    const sweep = v.alarms.find((a) => a.name === 'SweepMissing');
    const world = healthy(5, 5, 60, 60);
    for (const { states: s } of states(alarmModel('c', canary?.properties), world, 30)) {
      expect(s.slice(0, 5).every((x) => x === 'INSUFFICIENT_DATA')).toBe(true);
      expect(s.at(-1)).toBe('OK');
    }
    for (const { states: s } of states(alarmModel('s', sweep?.properties), world, 90)) {
      expect(s.includes('ALARM')).toBe(false);
      expect(s.at(-1)).toBe('OK');
    }
  });
});

describe('true after the first deploy', () => {
  const alarmOf = (name: string): AlarmModel => {
    const found = (variants[0] as AlarmVariant).alarms.find((a) => a.name === name);
    if (!found) throw new Error(`no ${name}`);
    return alarmModel(found.logicalId, found.properties);
  };
  const expectAlarm = (runs: ReturnType<typeof states>, byMinute: number, stays = true) => {
    for (const r of firstAlarm(runs)) {
      expect(r.first, JSON.stringify(r.options)).toBeGreaterThanOrEqual(0);
      expect(r.first, JSON.stringify(r.options)).toBeLessThanOrEqual(byMinute);
      if (stays) expect(r.stays, `stays in ALARM: ${JSON.stringify(r.options)}`).toBe(true);
    }
  };

  it('CanaryArrivals: a path broken from the first deploy (the canary runs, nothing arrives) alarms within the canary interval and the alarm window', () => {
    const world: World = { canaryRuns: every(5, 5), arrivals: [], sweeps: [], deploys: [0] };
    expectAlarm(states(alarmOf('CanaryArrivals'), world, 60), 5 + 11 + 3);
  });

  it('CanaryArrivals: a path that breaks after 30 healthy minutes alarms, and stays in ALARM', () => {
    const runs = every(5, 5);
    const world: World = { canaryRuns: runs, arrivals: runs.filter((m) => m < 30), sweeps: [], deploys: [0] };
    expectAlarm(states(alarmOf('CanaryArrivals'), world), 30 + 11 + 3);
  });

  it('CanaryArrivals: a canary schedule that stops after 30 healthy minutes alarms, and stays in ALARM', () => {
    const runs = every(5, 5).filter((m) => m < 30);
    const world: World = { canaryRuns: runs, arrivals: runs, sweeps: [], deploys: [0] };
    expectAlarm(states(alarmOf('CanaryArrivals'), world), 30 + 11 + 3);
  });

  it('SweepMissing: a sweep schedule that never starts alarms two hours after the deploy (its registration counts as a sweep), and stays in ALARM', () => {
    const world: World = { canaryRuns: [], arrivals: [], sweeps: [], deploys: [0] };
    expectAlarm(states(alarmOf('SweepMissing'), world, 240), 120 + 3);
  });

  it('SweepMissing: a schedule that stops after two sweeps alarms two intervals later, and stays in ALARM', () => {
    const world: World = { canaryRuns: [], arrivals: [], sweeps: [60, 120], deploys: [0] };
    expectAlarm(states(alarmOf('SweepMissing'), world, 360), 120 + 120 + 3);
  });

  it('what CloudWatch would do with the old definitions: missing data breaching fires on the first minute of a healthy deploy', () => {
    const canary = alarmOf('CanaryArrivals');
    const old: AlarmModel = {
      ...canary,
      treatMissingData: 'breaching',
      expressions: {},
      returned: 'arrivals',
    };
    const world = healthy(5, 5, 60, 60);
    for (const { states: s } of states(old, world, 30)) expect(s[0] as AlarmState).toBe('ALARM');
  });
});
