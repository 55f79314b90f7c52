/**
 * XGBoost's weighted quantile sketch (common/quantile.h: WQSummary and
 * QuantileSketchTemplate, ranks in float as HostSketchContainer instantiates
 * it), reproduced step for step so that the histogram cuts — and so the trees —
 * are the ones the real library makes from the same column of values pushed
 * in the same (row) order.
 */

const f32 = Math.fround;

/** A summary: parallel arrays of value, rmin, rmax, wmin; `size` entries in use. */
export class Summary {
  size = 0;
  value: Float32Array;
  rmin: Float32Array;
  rmax: Float32Array;
  wmin: Float32Array;

  constructor(capacity: number) {
    this.value = new Float32Array(capacity);
    this.rmin = new Float32Array(capacity);
    this.rmax = new Float32Array(capacity);
    this.wmin = new Float32Array(capacity);
  }

  reserve(capacity: number): void {
    if (this.value.length >= capacity) return;
    const grow = (a: Float32Array) => {
      const b = new Float32Array(capacity);
      b.set(a.subarray(0, this.size));
      return b;
    };
    this.value = grow(this.value);
    this.rmin = grow(this.rmin);
    this.rmax = grow(this.rmax);
    this.wmin = grow(this.wmin);
  }

  private put(i: number, rmin: number, rmax: number, wmin: number, value: number): void {
    this.rmin[i] = rmin;
    this.rmax[i] = rmax;
    this.wmin[i] = wmin;
    this.value[i] = value;
  }

  private copyEntry(i: number, src: Summary, j: number): void {
    this.put(i, src.rmin[j], src.rmax[j], src.wmin[j], src.value[j]);
  }

  copyFrom(src: Summary): void {
    this.reserve(src.size);
    this.size = src.size;
    this.value.set(src.value.subarray(0, src.size));
    this.rmin.set(src.rmin.subarray(0, src.size));
    this.rmax.set(src.rmax.subarray(0, src.size));
    this.wmin.set(src.wmin.subarray(0, src.size));
  }

  /** WQSummary::SetPrune. */
  setPrune(src: Summary, maxSize: number): void {
    if (src.size <= maxSize) {
      this.copyFrom(src);
      return;
    }
    this.reserve(maxSize);
    const begin = src.rmax[0];
    const range = f32(src.rmin[src.size - 1] - src.rmax[0]);
    const n = maxSize - 1;
    this.copyEntry(0, src, 0);
    this.size = 1;
    let i = 1;
    let last = 0;
    for (let k = 1; k < n; k++) {
      const dx2 = f32(2 * f32(f32(f32(k * range) / n) + begin));
      while (i < src.size - 1 && dx2 >= f32(src.rmax[i + 1] + src.rmin[i + 1])) i++;
      if (i === src.size - 1) break;
      const rminNext = f32(src.rmin[i] + src.wmin[i]);
      const rmaxPrev = f32(src.rmax[i + 1] - src.wmin[i + 1]);
      if (dx2 < f32(rminNext + rmaxPrev)) {
        if (i !== last) {
          this.copyEntry(this.size++, src, i);
          last = i;
        }
      } else if (i + 1 !== last) {
        this.copyEntry(this.size++, src, i + 1);
        last = i + 1;
      }
    }
    if (last !== src.size - 1) this.copyEntry(this.size++, src, src.size - 1);
  }

  /** WQSummary::SetCombine (merge of two summaries), then FixError. */
  setCombine(a: Summary, b: Summary): void {
    if (a.size === 0) {
      this.copyFrom(b);
      return;
    }
    if (b.size === 0) {
      this.copyFrom(a);
      return;
    }
    this.reserve(a.size + b.size);
    let i = 0;
    let j = 0;
    let d = 0;
    let aPrevRmin = 0;
    let bPrevRmin = 0;
    while (i < a.size && j < b.size) {
      if (a.value[i] === b.value[j]) {
        this.put(d++, f32(a.rmin[i] + b.rmin[j]), f32(a.rmax[i] + b.rmax[j]), f32(a.wmin[i] + b.wmin[j]), a.value[i]);
        aPrevRmin = f32(a.rmin[i] + a.wmin[i]);
        bPrevRmin = f32(b.rmin[j] + b.wmin[j]);
        i++;
        j++;
      } else if (a.value[i] < b.value[j]) {
        this.put(d++, f32(a.rmin[i] + bPrevRmin), f32(a.rmax[i] + f32(b.rmax[j] - b.wmin[j])), a.wmin[i], a.value[i]);
        aPrevRmin = f32(a.rmin[i] + a.wmin[i]);
        i++;
      } else {
        this.put(d++, f32(b.rmin[j] + aPrevRmin), f32(b.rmax[j] + f32(a.rmax[i] - a.wmin[i])), b.wmin[j], b.value[j]);
        bPrevRmin = f32(b.rmin[j] + b.wmin[j]);
        j++;
      }
    }
    if (i < a.size) {
      const bRmax = b.rmax[b.size - 1];
      for (; i < a.size; i++) this.put(d++, f32(a.rmin[i] + bPrevRmin), f32(a.rmax[i] + bRmax), a.wmin[i], a.value[i]);
    }
    if (j < b.size) {
      const aRmax = a.rmax[a.size - 1];
      for (; j < b.size; j++) this.put(d++, f32(b.rmin[j] + aPrevRmin), f32(b.rmax[j] + aRmax), b.wmin[j], b.value[j]);
    }
    this.size = d;
    this.fixError();
  }

  private fixError(): void {
    let prevRmin = 0;
    let prevRmax = 0;
    for (let i = 0; i < this.size; i++) {
      if (this.rmin[i] < prevRmin) this.rmin[i] = prevRmin;
      else prevRmin = this.rmin[i];
      if (this.rmax[i] < prevRmax) this.rmax[i] = prevRmax;
      const rminNext = f32(this.rmin[i] + this.wmin[i]);
      if (this.rmax[i] < rminNext) this.rmax[i] = rminNext;
      prevRmax = this.rmax[i];
    }
  }
}

/** QuantileSketchTemplate with unit weights: push values one by one, then take the summary. */
export class QuantileSketch {
  private readonly limitSize: number;
  private queue = new Float32Array(1);
  private queueWeight = new Float32Array(1);
  private tail = 0;
  private readonly levels: Summary[] = [];
  private readonly temp: Summary;

  constructor(maxn: number, eps: number) {
    let nlevel = 1;
    let limit: number;
    for (;;) {
      limit = Math.min(maxn, Math.ceil(nlevel / eps) + 1);
      if (2 ** nlevel * limit >= maxn) break;
      nlevel++;
    }
    this.limitSize = limit;
    this.temp = new Summary(0);
  }

  push(x: number): void {
    if (this.tail === this.queue.length && this.queue[this.tail - 1] !== x) {
      if (this.queue.length === 1) {
        // Lazy start: room for one value until a second distinct one arrives.
        const queue = new Float32Array(this.limitSize * 2);
        queue[0] = this.queue[0];
        const weight = new Float32Array(this.limitSize * 2);
        weight[0] = this.queueWeight[0];
        this.queue = queue;
        this.queueWeight = weight;
      } else {
        this.temp.reserve(this.limitSize * 2);
        this.makeSummary(this.temp);
        this.tail = 0;
        this.pushTemp();
      }
    }
    if (this.tail === 0 || this.queue[this.tail - 1] !== x) {
      this.queue[this.tail] = x;
      this.queueWeight[this.tail] = 1;
      this.tail++;
    } else {
      this.queueWeight[this.tail - 1] += 1;
    }
  }

  summary(): Summary {
    const out = new Summary(Math.max(this.tail, 1));
    this.makeSummary(out);
    if (this.levels.length !== 0) {
      const level0 = this.levels[0];
      level0.setPrune(out, this.limitSize);
      for (let l = 1; l < this.levels.length; l++) {
        if (this.levels[l].size === 0) continue;
        if (level0.size === 0) level0.copyFrom(this.levels[l]);
        else {
          out.setCombine(level0, this.levels[l]);
          level0.setPrune(out, this.limitSize);
        }
      }
      out.copyFrom(level0);
    } else if (out.size > this.limitSize) {
      const pruned = new Summary(this.limitSize);
      pruned.setPrune(out, this.limitSize);
      out.copyFrom(pruned);
    }
    return out;
  }

  /** Queue::MakeSummary: sort, merge equal values, cumulative ranks. */
  private makeSummary(out: Summary): void {
    const n = this.tail;
    // Each queue entry stands for `weight` copies of its value, so sorting the values
    // alone and summing the weights of equal ones gives the same summary (and a
    // native numeric sort is far faster than sorting indices with a comparator).
    // Weights here are counts (every push weighs 1), so the entries can be expanded into
    // that many copies and sorted natively; equal values are summed back below.
    let total = 0;
    for (let i = 0; i < n; i++) total += this.queueWeight[i];
    let values: Float32Array;
    if (total === n) values = this.queue.slice(0, n).sort();
    else {
      values = new Float32Array(total);
      let k = 0;
      for (let i = 0; i < n; i++) {
        const next = k + this.queueWeight[i];
        values.fill(this.queue[i], k, next);
        k = next;
      }
      values.sort();
    }
    const m = values.length;
    out.reserve(n);
    out.size = 0;
    let wsum = 0;
    for (let i = 0; i < m; ) {
      let j = i + 1;
      let w = 1;
      while (j < m && values[j] === values[i]) {
        w = f32(w + 1);
        j++;
      }
      out.rmin[out.size] = wsum;
      out.rmax[out.size] = f32(wsum + w);
      out.wmin[out.size] = w;
      out.value[out.size] = values[i];
      out.size++;
      wsum = f32(wsum + w);
      i = j;
    }
  }

  private pushTemp(): void {
    for (let l = 1; ; l++) {
      while (this.levels.length < l + 1) this.levels.push(new Summary(this.limitSize));
      const level = this.levels[l];
      if (level.size === 0) {
        level.setPrune(this.temp, this.limitSize);
        break;
      }
      const level0 = this.levels[0];
      level0.setPrune(this.temp, this.limitSize);
      this.temp.setCombine(level0, level);
      if (this.temp.size > this.limitSize) {
        level.size = 0;
      } else {
        level.copyFrom(this.temp);
        break;
      }
    }
  }
}
