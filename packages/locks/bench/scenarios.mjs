// Each scenario runs `operations` acquisitions against one subject.
export const scenarios = {
  'uncontended read': async (subject, operations) => {
    let value = 0;
    for (let i = 0; i < operations; i++) await subject.read(() => value++);
  },
  'uncontended write': async (subject, operations) => {
    let value = 0;
    for (let i = 0; i < operations; i++) await subject.write(() => value++);
  },
  // 32 flows at once, 9 reads to 1 write, each holding the lock across one await.
  'contended 9:1 read/write': async (subject, operations) => {
    let value = 0;
    const hold = async () => {
      await Promise.resolve();
      value++;
    };
    const flow = async (offset) => {
      for (let i = offset; i < operations; i += 32) {
        await (i % 10 === 0 ? subject.write(hold) : subject.read(hold));
      }
    };
    await Promise.all(Array.from({ length: 32 }, (_, offset) => flow(offset)));
    return value;
  },
  // No lock at all, measured last in each subject's process: what every promise of the process
  // costs once the subject has run. The difference between ours with ALS on and off is what
  // re-entry tracking adds to promises that have nothing to do with the lock.
  'bare await, no lock (after the above)': async (_subject, operations) => {
    let value = 0;
    for (let i = 0; i < operations; i++) await Promise.resolve(value++);
  },
};
