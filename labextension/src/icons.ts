import { LabIcon } from '@jupyterlab/ui-components';

/** The sidebar tab: a speech bubble over a database cylinder, in the theme's icon colour. */
const aigisSvg = `<svg xmlns="http://www.w3.org/2000/svg" width="16" height="16" viewBox="0 0 24 24">
  <g class="jp-icon3" fill="#616161">
    <path d="M3 3h13a2 2 0 0 1 2 2v6a2 2 0 0 1-2 2H9l-4 3.5V13H3a2 2 0 0 1-2-2V5a2 2 0 0 1 2-2zm1 3v1.6h10V6H4zm0 3.2v1.6h7V9.2H4z"/>
    <path d="M17.5 14c-3 0-5.5.9-5.5 2v4c0 1.1 2.5 2 5.5 2s5.5-.9 5.5-2v-4c0-1.1-2.5-2-5.5-2zm0 1.2c2.6 0 4.2.7 4.3.8-.1.2-1.7.8-4.3.8s-4.2-.7-4.3-.8c.1-.2 1.7-.8 4.3-.8z"/>
  </g>
</svg>`;

export const aigisIcon = new LabIcon({ name: 'aigis-jupyter:chat', svgstr: aigisSvg });

const databaseSvg = `<svg xmlns="http://www.w3.org/2000/svg" width="16" height="16" viewBox="0 0 24 24">
  <g class="jp-icon3" fill="#616161">
    <path d="M12 2C7.6 2 4 3.3 4 5v14c0 1.7 3.6 3 8 3s8-1.3 8-3V5c0-1.7-3.6-3-8-3zm0 2c3.9 0 6 1 6 1s-2.1 1-6 1-6-1-6-1 2.1-1 6-1zM6 7.4C7.5 8 9.6 8.3 12 8.3s4.5-.3 6-.9V11c0 .5-2.3 1.5-6 1.5S6 11.5 6 11V7.4zm0 6c1.5.6 3.6.9 6 .9s4.5-.3 6-.9V19c0 .5-2.3 1.5-6 1.5S6 19.5 6 19v-5.6z"/>
  </g>
</svg>`;

export const databaseIcon = new LabIcon({
  name: 'aigis-jupyter:database',
  svgstr: databaseSvg
});

/** "Save as a verified query": a thumbs-up (Material Design's, as JupyterLab's icons are). */
const thumbsUpSvg = `<svg xmlns="http://www.w3.org/2000/svg" width="16" height="16" viewBox="0 0 24 24">
  <g class="jp-icon3" fill="#616161">
    <path d="M1 21h4V9H1v12zm22-11c0-1.1-.9-2-2-2h-6.31l.95-4.57.03-.32c0-.41-.17-.79-.44-1.06L14.17 1 7.59 7.59C7.22 7.95 7 8.45 7 9v10c0 1.1.9 2 2 2h9c.83 0 1.54-.5 1.84-1.22l3.02-7.05c.09-.23.14-.47.14-.73v-2z"/>
  </g>
</svg>`;

export const thumbsUpIcon = new LabIcon({
  name: 'aigis-jupyter:thumbs-up',
  svgstr: thumbsUpSvg
});
