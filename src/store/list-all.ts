// Walks every page of a registration listing, so callers that need all matches don't each carry
// their own cursor loop.
import { MAX_PAGE_SIZE } from './pagination.js'
import type { Registration, RegistrationQuery, RegistrationStore, RegistrationUsage } from './types.js'

/** Every registration matching `query`, in the store's (createdAt, id) order, a full page at a time. */
export async function* listAllRegistrations(
  registrations: Pick<RegistrationStore, 'list'>,
  query: Omit<RegistrationQuery, 'cursor' | 'limit'> = {},
): AsyncGenerator<Registration & RegistrationUsage> {
  let cursor: string | undefined
  do {
    const page = await registrations.list({
      ...query,
      limit: MAX_PAGE_SIZE,
      ...(cursor === undefined ? {} : { cursor }),
    })
    yield* page.items
    cursor = page.nextCursor
  } while (cursor !== undefined)
}
