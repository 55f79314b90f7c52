/**
 * An error meant for a SQL client: PostgreSQL SQLSTATE, a message the user can
 * act on, and optional detail/hint. Everything pgsage reports to SQL uses it.
 */
export class SqlError extends Error {
  constructor(
    readonly sqlstate: string,
    message: string,
    readonly detail?: string,
    readonly hint?: string,
  ) {
    super(message);
    this.name = 'SqlError';
  }

  toFields() {
    return { code: this.sqlstate, message: this.message, detail: this.detail, hint: this.hint };
  }
}

/** SQLSTATEs pgsage raises (PostgreSQL's own codes, chosen by meaning). */
export const SqlState = {
  invalidParameterValue: '22023',
  nullValueNotAllowed: '22004',
  stringDataRightTruncation: '22001',
  invalidTextRepresentation: '22P02',
  programLimitExceeded: '54000',
  outOfMemory: '53200',
  insufficientPrivilege: '42501',
  invalidAuthorization: '28000',
  undefinedObject: '42704',
  featureNotSupported: '0A000',
  connectionFailure: '08006',
  sqlclientUnableToEstablishConnection: '08001',
  queryCanceled: '57014',
  lockNotAvailable: '55P03',
  /** External routine exception: the ML service answered with an error. */
  externalRoutineException: '38000',
  /** The service is unavailable or timed out. */
  ioError: '58030',
  internalError: 'XX000',
  /** A WARNING's code. */
  warning: '01000',
} as const;

export function asSqlError(error: unknown): SqlError {
  if (error instanceof SqlError) return error;
  const message = error instanceof Error ? error.message : String(error);
  return new SqlError(SqlState.internalError, message);
}
