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
      /** Where results go from now on: one histogram (slots × 2 doubles) per range, in order. */
      type: 'output';
      out: SharedArrayBuffer;
    }
  | {
      type: 'build';
      id: number;
      /** Pairs [begin, end) into the row partition, one histogram each. */
      ranges: number[];
    };

export interface HelperReply {
  type: 'built';
  id: number;
}
