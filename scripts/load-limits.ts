/**
 * The configuration the load tools (bench, chaos, fuzz) run the platform with: a few terminals
 * and one address play thousands of shoppers there, so the limits that protect shoppers from one
 * another (registrations per address, declines per card and terminal, writes per terminal,
 * connections per address) are lifted; otherwise they would measure themselves, not the platform.
 */
export const LOAD_TOOL_LIMITS = {
  registrationsPerMinute: 100000,
  velocity: { cardDeclinesPerHour: 10000, terminalDeclinesPerHour: 10000 },
  throttle: {
    postsPerSecond: 1000000,
    postsBurst: 1000000,
    connectionsPerAddress: 100000,
    openSessionsPerTerminal: 1000000,
  },
};
