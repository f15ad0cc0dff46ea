/**
 * A cache of recently used entries in two generations: new entries go to the young generation; when
 * it is full it becomes the old one and the previous old one is dropped; an old entry that is used
 * again moves to the young one. So it holds between `capacity` and 2 x `capacity` entries and a hit
 * in the young generation is one Map lookup, where a strict LRU built on Map delete-and-reinsert
 * costs about a microsecond per hit once the Map fills with deleted slots.
 *
 * With a `budget`, a generation also ends once the weights of the entries that entered it (`weigh`,
 * e.g. the characters of a key) reach the budget, so the cache holds at most 2 x budget plus two entries'
 * weight however large the entries are: a count bound alone lets a cache of texts grow with their length.
 */
export class Lru<K, V> {
  readonly #capacity: number;
  readonly #budget: number;
  readonly #weigh: ((key: K, value: V) => number) | undefined;
  #young = new Map<K, V>();
  #old = new Map<K, V>();
  #youngWeight = 0;

  constructor(capacity: number, options?: { budget: number; weigh: (key: K, value: V) => number }) {
    if (!Number.isInteger(capacity) || capacity < 1)
      throw new RangeError('Lru capacity must be a positive integer');
    if (options && !(options.budget > 0)) throw new RangeError('Lru budget must be positive');
    this.#capacity = capacity;
    this.#budget = options?.budget ?? Number.POSITIVE_INFINITY;
    this.#weigh = options?.weigh;
  }

  get size(): number {
    return this.#young.size + this.#old.size;
  }

  get(key: K): V | undefined {
    const young = this.#young.get(key);
    if (young !== undefined) return young;
    const old = this.#old.get(key);
    if (old !== undefined) {
      this.#old.delete(key);
      this.#add(key, old);
    }
    return old;
  }

  set(key: K, value: V): void {
    if (this.#young.has(key)) this.#young.set(key, value);
    else {
      this.#old.delete(key);
      this.#add(key, value);
    }
  }

  #add(key: K, value: V): void {
    this.#young.set(key, value);
    if (this.#weigh) this.#youngWeight += this.#weigh(key, value);
    if (this.#young.size >= this.#capacity || this.#youngWeight >= this.#budget) {
      this.#old = this.#young;
      this.#young = new Map();
      this.#youngWeight = 0;
    }
  }
}
