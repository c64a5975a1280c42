/** Polls `probe` until it holds (at most `ms`); answers whether it did, for the caller to assert. */
export async function eventually(probe: () => boolean | Promise<boolean>, ms = 5000): Promise<boolean> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await probe()) return true;
    await new Promise((r) => setTimeout(r, 5));
  }
  return probe();
}
