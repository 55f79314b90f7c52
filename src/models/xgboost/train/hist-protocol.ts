/** Messages between the XGBoost training thread and its histogram helper threads. */

export type HelperRequest =
  | {
      type: 'init';
      bins: SharedArrayBuffer;
      rows: number;
      cols: number;
      slotOffsets: Int32Array;
      slots: number;
      grad: SharedArrayBuffer;
      hess: SharedArrayBuffer;
      rowIndex: SharedArrayBuffer;
    }
  | {
      type: 'build';
      id: number;
      /** Pairs [begin, end) into the row partition, one histogram each. */
      ranges: Int32Array;
      /** Float64 output: one histogram (slots × 2) per range, in order. */
      out: SharedArrayBuffer;
    };

export interface HelperReply {
  type: 'built';
  id: number;
}
