// Shared fixtures for the whole run are started here (see test/support/).
export default async function setup(): Promise<() => Promise<void>> {
  return async () => {};
}
