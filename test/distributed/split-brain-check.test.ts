/** The fault suites' split-brain check flags an older tenure writing after a newer one, and only that. */
import { describe, expect, it } from 'vitest';
import { splitBrainEntries } from './support.js';

const entry = (id: string, writer: string): [string, string[]] => [id, ['w', writer, 'e', '{}']];

describe('splitBrainEntries', () => {
  it('flags an entry whose epoch goes backwards within a generation, not across a recovery', () => {
    expect(splitBrainEntries(0, [entry('1-0', 'n1/3'), entry('2-0', 'n2/4'), entry('3-0', 'n2/4')])).toEqual([]);
    expect(splitBrainEntries(2, [entry('1-0', 'n1/3'), entry('2-0', 'n2/4'), entry('3-0', 'n1/3')])).toEqual(['partition 2 entry 3-0 by n1/3 after epoch 4']);
    expect(splitBrainEntries(0, [entry('1-0', 'n2/4'), entry('2-0', 'recovery-g2'), entry('3-0', 'n1/1')])).toEqual([]);
  });
});
