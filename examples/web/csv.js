// A pasted or uploaded curve: numbers separated by commas, semicolons, tabs, spaces or new lines.

export function parseCurve(text, nPoints) {
  const cells = String(text).split(/[\s,;]+/).filter((c) => c.length > 0);
  if (cells.length === 0) throw new RangeError('the curve is empty: paste one number per grid point');
  const values = cells.map((c, i) => {
    const v = Number(c);
    if (!Number.isFinite(v)) throw new RangeError(`value ${i + 1} ('${c.slice(0, 40)}') is not a finite number`);
    return v;
  });
  if (values.length !== nPoints) {
    throw new RangeError(`the curve has ${values.length} values but this bundle's curves have ${nPoints} points; `
      + 'paste one value per grid point');
  }
  return values;
}
