/** A Map that forgets its oldest entries beyond `max` (setting a key again makes it the newest). */
export class BoundedMap<K, V> extends Map<K, V> {
  constructor(private readonly max: number) {
    super();
  }

  override set(k: K, v: V): this {
    this.delete(k);
    super.set(k, v);
    while (this.size > this.max) this.delete(this.keys().next().value as K);
    return this;
  }
}
