import { pagesForChat, physicalLimitMs } from '../src/bench/limit.js';

describe('physical limit', () => {
  it('is latency times the setup chain plus the rounds capacity allows', () => {
    // 2,350 message requests through a capacity of 50: 47 rounds; 5 setup requests; 200 ms each.
    expect(
      physicalLimitMs({
        latencyMs: 200,
        capacity: 50,
        sequentialRequests: 5,
        messageRequests: 2350,
        longestChatPages: 15,
      }),
    ).toBe(200 * (5 + 47));
  });

  it('is bound by the longest chat when capacity is wide', () => {
    expect(
      physicalLimitMs({
        latencyMs: 100,
        capacity: 1000,
        sequentialRequests: 3,
        messageRequests: 2350,
        longestChatPages: 15,
      }),
    ).toBe(100 * (3 + 15));
    expect(
      physicalLimitMs({
        latencyMs: 100,
        capacity: Infinity,
        sequentialRequests: 3,
        messageRequests: 2350,
        longestChatPages: 15,
      }),
    ).toBe(1800);
  });

  it('with time slices, the longest chat takes its pages over the slices, rounded up', () => {
    const inputs = {
      latencyMs: 100,
      capacity: 1000,
      sequentialRequests: 3,
      messageRequests: 2350,
      longestChatPages: 15,
    };
    expect(physicalLimitMs({ ...inputs, maxSlices: 8 })).toBe(100 * (3 + 3));
    expect(physicalLimitMs({ ...inputs, maxSlices: 1 })).toBe(100 * (3 + 15));
    // Capacity-bound: slicing changes nothing.
    expect(physicalLimitMs({ ...inputs, capacity: 50, maxSlices: 8 })).toBe(100 * (3 + 47));
  });

  it('refuses nonsense inputs', () => {
    expect(() =>
      physicalLimitMs({
        latencyMs: 100,
        capacity: 0,
        sequentialRequests: 0,
        messageRequests: 1,
        longestChatPages: 1,
      }),
    ).toThrow(RangeError);
  });

  it('counts the pages of a chat up to and including the empty page', () => {
    expect(pagesForChat(0, 0, 100)).toBe(1);
    expect(pagesForChat(5, 5, 100)).toBe(2);
    expect(pagesForChat(100, 97, 100)).toBe(2);
    expect(pagesForChat(1337, 1300, 100)).toBe(15);
  });
});
