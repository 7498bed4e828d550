/** Builds dist/plugin and dist/demo; returns the plugin's total size and files. */
export function buildPlugin(root: string): { size: number; files: string[]; budget: number };
export const BUDGET: number;
