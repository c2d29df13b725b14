import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { NvidiaSmiParseError, parseNvidiaSmiXml, ParsedGpu, sharingModeOf } from './nvidia-smi-parser';

const FIXTURE: string = readFileSync(
  join(__dirname, '../../../test/fixtures/nvidia-smi/h200-passthrough.xml'),
  'utf8',
);

function gpuElement(xml: string): string {
  const start: number = xml.indexOf('<gpu id=');
  const end: number = xml.indexOf('</gpu>') + '</gpu>'.length;
  return xml.slice(start, end);
}

function withGpus(xml: string, gpus: string[]): string {
  const element: string = gpuElement(xml);
  return xml.replace(element, gpus.join('\n'));
}

describe('parseNvidiaSmiXml', () => {
  it('reads the one H200 of the real passthrough host', () => {
    expect(parseNvidiaSmiXml(FIXTURE)).toEqual<ParsedGpu[]>([
      {
        index: 0,
        productName: 'NVIDIA H200',
        memoryMib: 143771,
        pciAddress: '00000000:00:06.0',
        uuid: 'GPU-3b6c5a73-17c2-f319-c5b0-563912c55e13',
        migMode: 'disabled',
        migModePending: 'disabled',
        virtualizationMode: 'passthrough',
        hostVgpuMode: null,
        vgpuHeterogeneous: null,
        vgpuLicense: null,
        model: 'h200-141gb',
      },
    ]);
  });

  it('reads a MIG mode change waiting for a GPU reset', () => {
    const xml: string = FIXTURE.replace('<pending_mig>Disabled</pending_mig>', '<pending_mig>Enabled</pending_mig>');
    expect(parseNvidiaSmiXml(xml)[0]).toMatchObject({ migMode: 'disabled', migModePending: 'enabled' });
  });

  it("reads a vGPU host's virtualization: the vGPU manager, SR-IOV, and vGPUs of mixed sizes", () => {
    const xml: string = FIXTURE.replace(
      /<gpu_virtualization_mode>[\s\S]*?<\/gpu_virtualization_mode>/,
      `<gpu_virtualization_mode>
        <virtualization_mode>Host VGPU</virtualization_mode>
        <host_vgpu_mode>SR-IOV</host_vgpu_mode>
        <vgpu_heterogeneous_mode>Enabled</vgpu_heterogeneous_mode>
      </gpu_virtualization_mode>`,
    );
    expect(parseNvidiaSmiXml(xml)[0]).toMatchObject({ virtualizationMode: 'host-vgpu', hostVgpuMode: 'sr-iov', vgpuHeterogeneous: true });
  });

  it('derives the sharing mode: mig when MIG mode is on, vgpu on a vGPU host, else passthrough', () => {
    expect(sharingModeOf(parseNvidiaSmiXml(FIXTURE)[0])).toBe('passthrough');
    const mig: string = FIXTURE.replace('<current_mig>Disabled</current_mig>', '<current_mig>Enabled</current_mig>');
    expect(sharingModeOf(parseNvidiaSmiXml(mig)[0])).toBe('mig');
    // A change waiting for a reset is not in force yet.
    const pending: string = FIXTURE.replace('<pending_mig>Disabled</pending_mig>', '<pending_mig>Enabled</pending_mig>');
    expect(sharingModeOf(parseNvidiaSmiXml(pending)[0])).toBe('passthrough');
    const vgpuHost: string = FIXTURE.replace('<virtualization_mode>Pass-Through</virtualization_mode>', '<virtualization_mode>Host VGPU</virtualization_mode>');
    expect(sharingModeOf(parseNvidiaSmiXml(vgpuHost)[0])).toBe('vgpu');
    // MIG on a model without a MIG table stays whole.
    expect(sharingModeOf({ migMode: 'enabled', virtualizationMode: null, model: 'l4-24gb' })).toBe('passthrough');
  });

  it("reads a vGPU guest's license, as a VM with an L40S-2Q sees it", () => {
    const xml: string = `<?xml version="1.0" ?>
      <nvidia_smi_log>
        <gpu id="00000000:00:07.0">
          <product_name>NVIDIA L40S-2Q</product_name>
          <uuid>GPU-guest</uuid>
          <pci><pci_bus_id>00000000:00:07.0</pci_bus_id></pci>
          <gpu_virtualization_mode><virtualization_mode>VGPU</virtualization_mode><host_vgpu_mode>N/A</host_vgpu_mode></gpu_virtualization_mode>
          <vgpu_software_licensed_product>
            <licensed_product_name>NVIDIA RTX Virtual Workstation</licensed_product_name>
            <license_status>Licensed (Expiry: 2026-7-7 16:1:44 GMT)</license_status>
          </vgpu_software_licensed_product>
          <fb_memory_usage><total>2048 MiB</total></fb_memory_usage>
        </gpu>
      </nvidia_smi_log>`;
    expect(parseNvidiaSmiXml(xml)[0]).toMatchObject({
      virtualizationMode: 'vgpu',
      hostVgpuMode: null,
      vgpuHeterogeneous: null,
      vgpuLicense: { product: 'NVIDIA RTX Virtual Workstation', status: 'Licensed (Expiry: 2026-7-7 16:1:44 GMT)' },
      migMode: 'unsupported',
      migModePending: 'unsupported',
    });
  });

  it.each([
    ['virtualization_mode', '<virtualization_mode>Pass-Through</virtualization_mode>', '<virtualization_mode>Sideways</virtualization_mode>'],
    ['host_vgpu_mode', '<host_vgpu_mode>N/A</host_vgpu_mode>', '<host_vgpu_mode>Maybe</host_vgpu_mode>'],
    ['pending_mig', '<pending_mig>Disabled</pending_mig>', '<pending_mig>Soon</pending_mig>'],
  ])('names an unknown %s value', (field: string, from: string, to: string) => {
    expect(() => parseNvidiaSmiXml(FIXTURE.replace(from, to))).toThrow(new RegExp(`unknown .*${field} "`));
  });

  it('reads several GPUs in document order', () => {
    const first: string = gpuElement(FIXTURE);
    const second: string = first
      .replaceAll('00000000:00:06.0', '00000000:00:07.0')
      .replace('GPU-3b6c5a73-17c2-f319-c5b0-563912c55e13', 'GPU-00000000-0000-0000-0000-000000000002')
      .replace('<current_mig>Disabled</current_mig>', '<current_mig>Enabled</current_mig>');
    const gpus: ParsedGpu[] = parseNvidiaSmiXml(withGpus(FIXTURE, [first, second]));

    expect(gpus).toHaveLength(2);
    expect(gpus.map((gpu: ParsedGpu) => [gpu.index, gpu.pciAddress, gpu.uuid, gpu.migMode])).toEqual([
      [0, '00000000:00:06.0', 'GPU-3b6c5a73-17c2-f319-c5b0-563912c55e13', 'disabled'],
      [1, '00000000:00:07.0', 'GPU-00000000-0000-0000-0000-000000000002', 'enabled'],
    ]);
    expect(gpus.every((gpu: ParsedGpu) => gpu.model === 'h200-141gb')).toBe(true);
  });

  it('reads a minimal document without a DOCTYPE', () => {
    const xml: string = `<?xml version="1.0" ?>
      <nvidia_smi_log>
        <gpu id="00000000:3B:00.0">
          <product_name>Tesla T4</product_name>
          <uuid>GPU-t4</uuid>
          <pci><pci_bus_id>00000000:3B:00.0</pci_bus_id></pci>
          <fb_memory_usage><total>15360 MiB</total></fb_memory_usage>
          <mig_mode><current_mig>N/A</current_mig><pending_mig>N/A</pending_mig></mig_mode>
        </gpu>
      </nvidia_smi_log>`;
    expect(parseNvidiaSmiXml(xml)).toEqual([
      {
        index: 0,
        productName: 'Tesla T4',
        memoryMib: 15360,
        pciAddress: '00000000:3B:00.0',
        uuid: 'GPU-t4',
        migMode: 'unsupported',
        migModePending: 'unsupported',
        virtualizationMode: null,
        hostVgpuMode: null,
        vgpuHeterogeneous: null,
        vgpuLicense: null,
        model: 't4-16gb',
      },
    ]);
  });

  it('treats a missing mig_mode as unsupported', () => {
    const xml: string = FIXTURE.replace(/<mig_mode>[\s\S]*?<\/mig_mode>/, '');
    expect(parseNvidiaSmiXml(xml)[0].migMode).toBe('unsupported');
  });

  describe('rejects', () => {
    it.each<[string, string, RegExp]>([
      ['an empty string', '', /empty/],
      ['text that is not XML', 'NVIDIA-SMI has failed', /not well-formed/],
      ['truncated XML', FIXTURE.slice(0, 4000), /not well-formed/],
      ['mismatched tags', '<nvidia_smi_log><gpu></nvidia_smi_log>', /not well-formed.*gpu/],
      ['another root element', '<?xml version="1.0" ?><gpu_log><gpu id="x"/></gpu_log>', /root element <nvidia_smi_log>.*gpu_log/],
      ['a log without GPUs', '<nvidia_smi_log><attached_gpus>0</attached_gpus></nvidia_smi_log>', /no <gpu>/],
      ['an empty log', '<nvidia_smi_log></nvidia_smi_log>', /no <gpu>/],
      ['an empty gpu element', '<nvidia_smi_log><gpu id="x"></gpu></nvidia_smi_log>', /#0 has no product_name/],
      ['a bare gpu element', '<nvidia_smi_log><gpu/></nvidia_smi_log>', /#0 is empty/],
      ['a missing product name', FIXTURE.replace('<product_name>NVIDIA H200</product_name>', ''), /no product_name/],
      ['a blank product name', FIXTURE.replace('NVIDIA H200</product_name>', '  </product_name>'), /no product_name/],
      ['a missing uuid', FIXTURE.replace(/<uuid>.*<\/uuid>/, ''), /no uuid/],
      ['a missing PCI bus id', FIXTURE.replace(/<pci_bus_id>.*<\/pci_bus_id>/, ''), /no pci\/pci_bus_id/],
      ['a missing memory total', FIXTURE.replace('<total>143771 MiB</total>', ''), /no fb_memory_usage\/total/],
      ['a memory total that is not MiB', FIXTURE.replace('143771 MiB', '140 GiB'), /"140 GiB"/],
      ['a zero memory total', FIXTURE.replace('143771 MiB', '0 MiB'), /"0 MiB"/],
      ['an unknown MIG mode', FIXTURE.replace('<current_mig>Disabled', '<current_mig>Sideways'), /mig_mode.*Sideways/],
      [
        'entity declarations',
        '<!DOCTYPE nvidia_smi_log [<!ENTITY a "aaaa">]><nvidia_smi_log>&a;</nvidia_smi_log>',
        /entities/,
      ],
    ])('%s', (_label: string, xml: string, message: RegExp) => {
      expect(() => parseNvidiaSmiXml(xml)).toThrow(NvidiaSmiParseError);
      expect(() => parseNvidiaSmiXml(xml)).toThrow(message);
    });

    it('says which GPU is broken', () => {
      const first: string = gpuElement(FIXTURE);
      const broken: string = first.replace(/<uuid>.*<\/uuid>/, '');
      expect(() => parseNvidiaSmiXml(withGpus(FIXTURE, [first, broken]))).toThrow('<gpu> #1 has no uuid');
    });
  });

  it('raises an Error subclass with a stable code', () => {
    try {
      parseNvidiaSmiXml('<x/>');
      throw new Error('expected a parse error');
    } catch (error: unknown) {
      expect(error).toBeInstanceOf(Error);
      expect(error).toBeInstanceOf(NvidiaSmiParseError);
      expect((error as NvidiaSmiParseError).code).toBe('NVIDIA_SMI_PARSE_ERROR');
      expect((error as NvidiaSmiParseError).name).toBe('NvidiaSmiParseError');
    }
  });
});
