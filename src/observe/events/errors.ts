/**
 * The events part's error catalogue (docs/events.md lists it): stable codes with the identifiers involved as log
 * fields. None stops the agent: events are a record, never a reason to fail a cycle.
 */
export const eventsErrorCatalogue = {
  EVENTS_FILE_UNREADABLE: {
    where: 'agent',
    summary:
      'The events file beside the data directory could not be read or has lines that are not events; the agent starts with what it could read (possibly nothing) and writes the file anew.',
  },
  EVENTS_FILE_UNWRITABLE: {
    where: 'agent',
    summary:
      'An event could not be appended to the events file (disk full, permissions); it is still kept in memory, logged and served by GET /events.',
  },
  EVENTS_BAD_SINCE: {
    where: 'rest',
    summary:
      'GET /events?since= got something that is neither epoch milliseconds, an ISO-8601 time nor a duration such as 15m; the answer is 400.',
  },
} as const;

export type EventsErrorCode = keyof typeof eventsErrorCatalogue;
