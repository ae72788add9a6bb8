// The page imports uPlot from the file the service serves beside it (the installed package's dist/uPlot.esm.js).
export { default } from 'uplot';
