/**
 * CloudWatch's evaluation of an alarm, replayed minute by minute over metrics a test makes up, so a test
 * can ask of the synthesized template "what state is each alarm in, minute by minute, after a first
 * deploy?" without an AWS account.
 *
 * What is modelled, from AWS's documentation (CloudWatch User Guide, "Configuring how CloudWatch alarms
 * treat missing data" and "Metric math syntax and functions"):
 * - every minute the alarm retrieves an evaluation range of periods longer than its evaluation periods
 *   (`extraPeriods` more; AWS does not publish the number, so tests run several); a period with no
 *   datapoint is missing;
 * - with at least N (evaluation periods) datapoints in the range, the most recent N decide: ALARM when
 *   at least M (datapoints to alarm) breach; with none, `treatMissingData` decides (breaching: ALARM,
 *   notBreaching: OK, ignore: the state stays, missing: INSUFFICIENT_DATA); with some, the missing ones
 *   are filled as `treatMissingData` says, as few as possible, and the premature-alarm rule applies;
 * - metric math over the range: FILL(m, value), DATAPOINT_COUNT(m), IF(condition, a[, b]) (a scalar
 *   condition picks a branch; a series one goes timestamp by timestamp, no point where the branch has
 *   none), MAX([...]), arithmetic and comparisons (series with series: where both have a point);
 * - where the documentation says nothing, both readings are offered: `fillEmpty` says whether FILL of a
 *   series with no datapoint in the range yields the value everywhere ('dense') or nothing ('empty');
 * - datapoints arrive `latencyMinutes` late (a period's sum counts only what has arrived).
 * Periods slide with the evaluation time (a range ends at the evaluating minute). The alarm starts in
 * INSUFFICIENT_DATA, as a new alarm does.
 */

export type AlarmState = 'OK' | 'ALARM' | 'INSUFFICIENT_DATA';

// biome-ignore lint/suspicious/noExplicitAny: CloudFormation properties are plain JSON
type Json = any;

/** One metric an alarm reads, as the template names it. */
export interface MetricRef {
  readonly namespace: string;
  readonly metricName: string;
  /** Dimension values as JSON text (`{"Ref":"CanaryArrival1234ABCD"}` for a token). */
  readonly dimensions: Readonly<Record<string, string>>;
  readonly stat: string;
  readonly periodSeconds: number;
}

export interface AlarmModel {
  readonly logicalId: string;
  readonly threshold: number;
  readonly comparison: string;
  readonly evaluationPeriods: number;
  readonly datapointsToAlarm: number;
  readonly treatMissingData: 'breaching' | 'notBreaching' | 'ignore' | 'missing';
  readonly periodSeconds: number;
  /** Metric queries by id; `returned` is the id of the series the alarm judges. */
  readonly metrics: Readonly<Record<string, MetricRef>>;
  readonly expressions: Readonly<Record<string, string>>;
  readonly returned: string;
}

/** Reads an AWS::CloudWatch::Alarm's properties. */
export function alarmModel(logicalId: string, p: Json): AlarmModel {
  const dims = (list: Json[] | undefined) =>
    Object.fromEntries((list ?? []).map((d: Json) => [d.Name, JSON.stringify(d.Value)]));
  const metrics: Record<string, MetricRef> = {};
  const expressions: Record<string, string> = {};
  let returned = 'm';
  let period = p.Period as number | undefined;
  if (Array.isArray(p.Metrics)) {
    for (const q of p.Metrics as Json[]) {
      if (q.Expression !== undefined) expressions[q.Id] = q.Expression;
      else {
        metrics[q.Id] = {
          namespace: q.MetricStat.Metric.Namespace,
          metricName: q.MetricStat.Metric.MetricName,
          dimensions: dims(q.MetricStat.Metric.Dimensions),
          stat: q.MetricStat.Stat,
          periodSeconds: q.MetricStat.Period,
        };
        period ??= q.MetricStat.Period;
      }
      if (q.ReturnData !== false) returned = q.Id;
    }
    if (Object.keys(expressions).length > 0 && p.Metrics.some((q: Json) => q.Period !== undefined)) {
      period = (p.Metrics as Json[]).find((q) => q.Period !== undefined)?.Period ?? period;
    }
  } else {
    metrics.m = {
      namespace: p.Namespace,
      metricName: p.MetricName,
      dimensions: dims(p.Dimensions),
      stat: p.Statistic ?? p.ExtendedStatistic,
      periodSeconds: p.Period,
    };
  }
  const evaluationPeriods = p.EvaluationPeriods as number;
  return {
    logicalId,
    threshold: p.Threshold,
    comparison: p.ComparisonOperator,
    evaluationPeriods,
    datapointsToAlarm: p.DatapointsToAlarm ?? evaluationPeriods,
    treatMissingData: p.TreatMissingData ?? 'missing',
    periodSeconds: period as number,
    metrics,
    expressions,
    returned,
  };
}

/** What a metric received, minute by minute (minute 0 is the deploy): a value per minute, or none. */
export type MetricSource = (metric: MetricRef) => ((minute: number) => number | undefined) | undefined;

export interface ReplayOptions {
  /** Periods retrieved beyond the evaluation periods. */
  readonly extraPeriods: number;
  /** What FILL does with a series that has no datapoint in the range. */
  readonly fillEmpty: 'dense' | 'empty';
  /** Minutes a datapoint takes to be visible to the alarm. */
  readonly latencyMinutes: number;
}

type Series = Map<number, number>;
type Value = number | Series;

/** The period sums (or maxima) of a metric over the range: index 0 the oldest, `count - 1` the newest. */
function periods(
  source: ((minute: number) => number | undefined) | undefined,
  metric: MetricRef,
  now: number,
  count: number,
  latency: number,
): Series {
  const out: Series = new Map();
  if (source === undefined) return out;
  const length = metric.periodSeconds / 60;
  for (let i = 0; i < count; i++) {
    const end = now - (count - 1 - i) * length;
    const values: number[] = [];
    for (let minute = end - length; minute < end; minute++) {
      if (minute > now - latency - 1) continue; // not arrived yet
      const v = source(minute);
      if (v !== undefined) values.push(v);
    }
    if (values.length === 0) continue;
    const stat = metric.stat;
    out.set(
      i,
      stat === 'Maximum'
        ? Math.max(...values)
        : stat === 'Minimum'
          ? Math.min(...values)
          : stat === 'Average'
            ? values.reduce((a, b) => a + b, 0) / values.length
            : stat === 'SampleCount'
              ? values.length
              : values.reduce((a, b) => a + b, 0),
    );
  }
  return out;
}

/** Metric math over the range (the subset the project's alarms use). */
export function evaluateExpression(
  expression: string,
  series: Readonly<Record<string, Series>>,
  count: number,
  fillEmpty: ReplayOptions['fillEmpty'],
): Series {
  const tokens = expression.match(
    /\s*(>=|<=|==|!=|&&|\|\||[-+*/(),<>[\]]|[A-Za-z_][A-Za-z0-9_]*|\d+(?:\.\d+)?)\s*/g,
  );
  if (tokens === null) throw new Error(`metric math: cannot read ${expression}`);
  const t = tokens.map((x) => x.trim());
  let i = 0;
  const peek = () => t[i];
  const take = (want?: string) => {
    const token = t[i++];
    if (token === undefined || (want !== undefined && token !== want))
      throw new Error(`metric math: expected ${want ?? 'more'} at ${i} in ${expression}`);
    return token;
  };
  const all = [...Array(count).keys()];
  const binary = (a: Value, b: Value, op: (x: number, y: number) => number): Value => {
    if (typeof a === 'number' && typeof b === 'number') return op(a, b);
    const out: Series = new Map();
    for (const k of all) {
      const x = typeof a === 'number' ? a : a.get(k);
      const y = typeof b === 'number' ? b : b.get(k);
      if (x !== undefined && y !== undefined) out.set(k, op(x, y));
    }
    return out;
  };
  const asSeries = (v: Value): Series => {
    if (typeof v !== 'number') return v;
    return new Map(all.map((k) => [k, v]));
  };
  const call = (name: string, args: Value[][]): Value => {
    const arg = (n: number) => args[n]?.[0] as Value;
    switch (name) {
      case 'FILL': {
        const s = asSeries(arg(0));
        const fill = arg(1) as number;
        if (s.size === 0 && fillEmpty === 'empty') return new Map();
        return new Map(all.map((k) => [k, s.get(k) ?? fill]));
      }
      case 'DATAPOINT_COUNT':
        return asSeries(arg(0)).size;
      case 'IF': {
        const condition = arg(0);
        const yes = arg(1);
        const no = args[2]?.[0];
        if (typeof condition === 'number') return condition !== 0 ? yes : (no ?? new Map());
        const out: Series = new Map();
        for (const [k, c] of condition) {
          const branch = c !== 0 ? yes : no;
          if (branch === undefined) continue;
          const v = typeof branch === 'number' ? branch : branch.get(k);
          if (v !== undefined) out.set(k, v);
        }
        return out;
      }
      case 'MAX': {
        const list = args[0] as Value[];
        const out: Series = new Map();
        for (const k of all) {
          const present = list
            .map((v) => (typeof v === 'number' ? v : v.get(k)))
            .filter((v) => v !== undefined);
          if (present.length > 0) out.set(k, Math.max(...(present as number[])));
        }
        return out;
      }
      default:
        throw new Error(`metric math: ${name} is not modelled`);
    }
  };
  // Grammar: or > and > comparison > additive > multiplicative > primary.
  function primary(): Value | Value[] {
    const token = take();
    if (token === '(') {
      const v = or();
      take(')');
      return v;
    }
    if (token === '[') {
      const list: Value[] = [or() as Value];
      while (peek() === ',') {
        take(',');
        list.push(or() as Value);
      }
      take(']');
      return list;
    }
    if (/^\d/.test(token)) return Number(token);
    if (peek() === '(') {
      take('(');
      const args: Value[][] = [];
      if (peek() !== ')') {
        for (;;) {
          const v = or();
          args.push(Array.isArray(v) ? (v as Value[]) : [v as Value]);
          if (peek() !== ',') break;
          take(',');
        }
      }
      take(')');
      return call(token, args);
    }
    const found = series[token];
    if (found === undefined) throw new Error(`metric math: no query ${token}`);
    return found;
  }
  const fold = (next: () => Value, ops: Record<string, (x: number, y: number) => number>) => () => {
    let v = next();
    while (peek() !== undefined && (peek() as string) in ops) {
      const op = ops[take()] as (x: number, y: number) => number;
      v = binary(v, next(), op);
    }
    return v;
  };
  const multiplicative = fold(() => primary() as Value, { '*': (x, y) => x * y, '/': (x, y) => x / y });
  const additive = fold(multiplicative, { '+': (x, y) => x + y, '-': (x, y) => x - y });
  const comparison = fold(additive, {
    '>': (x, y) => Number(x > y),
    '<': (x, y) => Number(x < y),
    '>=': (x, y) => Number(x >= y),
    '<=': (x, y) => Number(x <= y),
    '==': (x, y) => Number(x === y),
    '!=': (x, y) => Number(x !== y),
  });
  const and = fold(comparison, {
    '&&': (x, y) => Number(x !== 0 && y !== 0),
    AND: (x, y) => Number(x !== 0 && y !== 0),
  });
  function or(): Value {
    return fold(and, {
      '||': (x, y) => Number(x !== 0 || y !== 0),
      OR: (x, y) => Number(x !== 0 || y !== 0),
    })();
  }
  const result = or();
  if (i !== t.length) throw new Error(`metric math: trailing ${t.slice(i).join(' ')} in ${expression}`);
  return asSeries(result as Value);
}

function breaches(alarm: AlarmModel, value: number): boolean {
  switch (alarm.comparison) {
    case 'GreaterThanOrEqualToThreshold':
      return value >= alarm.threshold;
    case 'GreaterThanThreshold':
      return value > alarm.threshold;
    case 'LessThanThreshold':
      return value < alarm.threshold;
    case 'LessThanOrEqualToThreshold':
      return value <= alarm.threshold;
    default:
      throw new Error(`alarm replay: comparison ${alarm.comparison} is not modelled`);
  }
}

/** The next state, from the range's values (index 0 the oldest) and the state now. */
export function nextState(alarm: AlarmModel, values: Series, count: number, state: AlarmState): AlarmState {
  const N = alarm.evaluationPeriods;
  const M = alarm.datapointsToAlarm;
  const present = [...Array(count).keys()].filter((k) => values.has(k));
  if (present.length >= N) {
    const recent = present.slice(-N).map((k) => breaches(alarm, values.get(k) as number));
    return recent.filter(Boolean).length >= M ? 'ALARM' : 'OK';
  }
  if (present.length === 0) {
    switch (alarm.treatMissingData) {
      case 'breaching':
        return 'ALARM';
      case 'notBreaching':
        return 'OK';
      case 'ignore':
        return state;
      default:
        return 'INSUFFICIENT_DATA';
    }
  }
  // Some points: the N most recent periods, the missing ones filled as few times as possible.
  // Every real point of the range counts (fewer than N of them), the rest are filled.
  const window = [...Array(count).keys()].slice(-N);
  const real = present;
  const breaching = real.filter((k) => breaches(alarm, values.get(k) as number)).length;
  const filled = N - real.length;
  if (alarm.treatMissingData === 'breaching') return breaching + filled >= M ? 'ALARM' : 'OK';
  if (breaching >= M) return 'ALARM';
  if (alarm.treatMissingData === 'notBreaching') return 'OK';
  // The premature-alarm rule: the oldest breaching point of the last N periods is at least M periods old
  // and every more recent one breaches or is missing.
  const lastN = window.map((k) => (values.has(k) ? breaches(alarm, values.get(k) as number) : undefined));
  const oldest = lastN.indexOf(true);
  if (oldest >= 0 && N - oldest >= M && lastN.slice(oldest).every((b) => b !== false))
    return alarm.treatMissingData === 'ignore' ? state : 'ALARM';
  return 'OK';
}

/** The alarm's state at each minute from 0 to `minutes` (evaluated every minute). */
export function replay(
  alarm: AlarmModel,
  source: MetricSource,
  minutes: number,
  options: ReplayOptions,
): AlarmState[] {
  const count = alarm.evaluationPeriods + options.extraPeriods;
  const states: AlarmState[] = [];
  let state: AlarmState = 'INSUFFICIENT_DATA';
  for (let now = 0; now <= minutes; now++) {
    const series: Record<string, Series> = {};
    for (const [id, metric] of Object.entries(alarm.metrics))
      series[id] = periods(source(metric), metric, now, count, options.latencyMinutes);
    const values =
      alarm.expressions[alarm.returned] !== undefined
        ? evaluateExpression(alarm.expressions[alarm.returned] as string, series, count, options.fillEmpty)
        : (series[alarm.returned] as Series);
    state = nextState(alarm, values, count, state);
    states.push(state);
  }
  return states;
}
